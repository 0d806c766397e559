"""Every error a user can cause is one line on stderr starting with ``error:``, a non-zero exit, no traceback, and
nothing written: a table of bad inputs across every verb, run in-process against run folders trained once.

Placeholders in the argv: {clf} a classifier run, {lm} a poem language model, {gpt} a tiny GPT, {cgan} a
class-conditional GAN, {ae} a plain autoencoder (the runs of conftest's ``serve_runs``, and a GPT trained here);
{tab} a table classifier; {d} a folder of bad and good input files; {tmp} the test's own folder (its working directory); the damaged runs
{noconfig}, {nomodel}, {badconfig}, {badspec}, {badweights}, {othersize}, {othermodel}, {garbage}, {schema9}.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from nnzoo.cli import main
from nnzoo.data import write_idx

T = ["train", "digits-mlp"]  # a recipe that needs no download
LM = ["train", "shakespeare-char-lstm"]
CSV = ["train", "co2-lstm"]

# (argv, a piece of the message); argv items are formatted with the placeholders above.
CASES: list[tuple[list[str], str]] = [
    # ---- train: settings, their types, ranges and meaning ----
    ([*T, "--epochs", "inf"], "argument --epochs: invalid int value: 'inf' (see nnzoo train --help)"),
    ([*T, "--epochs", "nan"], "invalid int value"),
    ([*T, "--epochs", "0"], "--epochs must be a positive whole number, not 0."),
    ([*T, "--epochs", "-1"], "--epochs must be a positive whole number"),
    ([*T, "--set", "train.epochs=.inf"], "'train.epochs' must be a whole number, not inf"),
    ([*T, "--set", "train.epochs=.nan"], "'train.epochs' must be a whole number, not nan"),
    ([*T, "--set", "train.epochs=2.5"], "must be a whole number"),
    ([*T, "--set", "train.epochs=true"], "must be a whole number"),
    ([*T, "--set", "train.epochs=ten"], "must be a whole number"),
    ([*T, "--batch-size", "0"], "--batch-size must be a positive whole number"),
    ([*T, "--batch-size", "-5"], "--batch-size must be a positive whole number"),
    ([*T, "--batch-size", "1.5"], "invalid int value"),
    ([*T, "--set", "train.eval_batch_size=0"], "train.eval_batch_size must be a positive whole number"),
    ([*T, "--lr", "0"], "--lr must be a positive number, not 0"),
    ([*T, "--lr", "-0.1"], "--lr must be a positive number"),
    ([*T, "--lr", "inf"], "must be a finite number, not inf"),
    ([*T, "--lr", "nan"], "must be a finite number, not nan"),
    ([*T, "--lr", "fast"], "invalid float value"),
    ([*T, "--set", "train.lr=.inf"], "must be a finite number"),
    ([*T, "--set", "train.lr=fast"], "Setting 'train.lr' must be a number, not 'fast'."),
    ([*T, "--set", "train.momentum=-0.5"], "train.momentum must be in [0, 1), not -0.5"),
    ([*T, "--set", "train.momentum=1.5"], "train.momentum must be in [0, 1)"),
    ([*T, "--set", "train.momentum=abc"], "'train.momentum' must be a number"),
    ([*T, "--set", "train.nesterov=true"], "nesterov=true needs a positive momentum"),
    ([*T, "--set", "train.nesterov=maybe"], "must be true or false"),
    ([*T, "--set", "train.weight_decay=-1"], "train.weight_decay must be at least 0"),
    ([*T, "--set", "train.weight_decay=.nan"], "must be a finite number"),
    ([*T, "--set", "train.pct_start=2"], "train.pct_start must be in (0, 1), not 2"),
    ([*T, "--set", "train.pct_start=0"], "train.pct_start must be in (0, 1)"),
    ([*T, "--set", "train.pct_start=-0.1"], "train.pct_start must be in (0, 1)"),
    ([*T, "--set", "train.step_epochs=0"], "train.step_epochs must be a positive whole number"),
    ([*T, "--set", "train.step_gamma=0"], "train.step_gamma must be in (0, 1]"),
    ([*T, "--set", "train.step_gamma=-1"], "train.step_gamma must be in (0, 1]"),
    ([*T, "--set", "train.step_gamma=5"], "train.step_gamma must be in (0, 1]"),
    ([*T, "--set", "train.num_threads=-1"], "train.num_threads must be a positive whole number"),
    ([*T, "--set", "train.num_threads=0"], "train.num_threads must be a positive whole number"),
    ([*T, "--seed", "99999999999999999999999"], "--seed must be in [0, 9223372036854775807]"),
    ([*T, "--seed", "9223372036854775808"], "--seed must be in [0, 9223372036854775807]"),
    ([*T, "--seed", "-1"], "--seed must be in [0, "),
    ([*T, "--set", "train.clip_grad_norm=-1"], "train.clip_grad_norm must be a positive number, not -1"),
    ([*T, "--set", "train.clip_grad_norm=0"], "train.clip_grad_norm must be a positive number"),
    ([*T, "--set", "train.clip_grad_norm=.inf"], "must be a finite number"),
    ([*T, "--set", "train.early_stopping_patience=-2"], "train.early_stopping_patience must be a positive whole"),
    ([*T, "--set", "train.early_stopping_patience=0"], "train.early_stopping_patience must be a positive whole"),
    ([*T, "--set", "train.warmup_steps=-1"], "train.warmup_steps must be at least 0"),
    ([*T, "--set", "train.min_lr=-1"], "train.min_lr must be in [0, "),
    ([*T, "--set", "train.min_lr=10"], "train.min_lr must be in [0, "),
    ([*T, "--max-steps", "0"], "--max-steps must be a positive whole number"),
    ([*T, "--max-steps", "-3"], "--max-steps must be a positive whole number"),
    ([*T, "--set", "train.log_every=0"], "train.log_every must be a positive whole number"),
    ([*T, "--set", "train.betas=[2, 3]"], "train.betas must be two numbers in [0, 1)"),
    ([*T, "--set", "train.betas=0.9"], "must be a list"),
    ([*T, "--set", "train.monitor=accuracy"], "monitor must be val_loss or val_accuracy"),
    ([*T, "--optimizer", "rmsprop"], "argument --optimizer: invalid choice: 'rmsprop'"),
    ([*T, "--set", "train.optimizer=rmsprop"], "--optimizer must be one of sgd, adam, adamw"),
    ([*T, "--set", "train.schedule=exp"], "--schedule must be one of none, step, cosine, onecycle"),
    ([*T, "--device", "tpu"], "--device must be one of auto, cpu, cuda, mps"),
    ([*T, "--device", "cuda:77"], "--device cuda:77"),
    ([*T, "--set", "data.val_size=-1"], "data.val_size must be at least 0"),
    ([*T, "--set", "data.val_size=1.5"], "data.val_size must be 0, a fraction between 0 and 1, or a whole number"),
    ([*T, "--set", "data.val_size=.nan"], "must be a finite number"),
    ([*T, "--set", "data.val_size=5000"], "leaves no training data"),
    ([*T, "--set", "data.limit_train=-3"], "data.limit_train must be a positive whole number, not -3"),
    ([*T, "--set", "data.limit_train=0"], "data.limit_train must be a positive whole number"),
    ([*T, "--set", "data.limit_test=-1"], "data.limit_test must be a positive whole number"),
    ([*T, "--set", "data.seq_len=0"], "data.seq_len must be a positive whole number"),
    ([*T, "--set", "data.stride=0"], "data.stride must be in [1, "),
    ([*T, "--set", "data.split_seed=-1"], "data.split_seed must be in [0, "),
    ([*T, "--set", "data.options=3"], "must be a mapping"),
    ([*T, "--set", "warp=9"], "Unknown setting 'warp'."),
    ([*T, "--set", "train.warp=9"], "Unknown setting 'train.warp'."),
    ([*T, "--set", "lr"], "--set expects KEY=VALUE, got 'lr'."),
    # ---- train: model arguments, checked against the model's signature ----
    ([*T, "--set", "model_args.dropout=abc"], "Setting 'model_args.dropout' must be a number, not 'abc'."),
    ([*T, "--set", "train.lr=1e400"], "'train.lr' must be a finite number"),
    ([*T, "--set", "data.options.horizon=3"], "Dataset 'digits' has no option 'horizon' (data.options.horizon); it takes"),
    ([*CSV, "--set", "data.options.horizn=3"], "its options are: horizon, season, test_size."),
    ([*CSV, "--dataset", "sunspots", "--set", "data.options.regular_only=true"], "has no option 'regular_only'"),
    ([*T, "--set", "model_args.dropout=2"], "dropout must be in [0, 1)"),
    ([*T, "--set", "model_args.dropout=.inf"], "'model_args.dropout' must be a finite number"),
    ([*T, "--set", "model_args.label_smoothing=abc"], "'model_args.label_smoothing' must be a number"),
    ([*T, "--set", "model_args.label_smoothing=1.5"], "label_smoothing must be in [0, 1)"),
    ([*T, "--set", "model_args.hidden=[32, x]"], "'model_args.hidden[1]' must be a whole number, not 'x'"),
    ([*T, "--set", "model_args.hidden=abc"], "model_args.hidden"),
    ([*T, "--set", "model_args.hidden=[0]"], "mlp hidden sizes must be positive"),
    ([*T, "--set", "model_args.activation=swish"], "Unknown activation 'swish'"),
    ([*T, "--set", "model_args.activation=3"], "'model_args.activation' must be text"),
    ([*T, "--set", "model_args.batch_norm=3"], "'model_args.batch_norm' must be true or false"),
    ([*T, "--set", "model_args.nope=1"], "Model 'mlp' has no argument 'nope'"),
    ([*T, "--set", "model=resnet"], "Unknown model 'resnet'. Valid choices: "),
    ([*T, "--set", "model=simple-cnn"], "simple-cnn needs input of at least 10x10 pixels"),
    ([*T, "--set", "model=rnn", "--set", "model_args.cell=transformer"], "cell must be one of lstm, gru, rnn"),
    # ---- train: data of the wrong kind for the model, and data files ----
    ([*T, "--dataset", "imagenet"], "Unknown dataset 'imagenet'. Valid choices: breast-cancer, chnsenticorp, cifar10"),
    ([*T, "--dataset", "tinyshakespeare"], "mlp takes images, a table or labelled texts, but tinyshakespeare is a text corpus"),
    ([*T, "--dataset", "text-file"], "mlp takes images, a table or labelled texts, but text-file is a text corpus"),
    ([*T, "--dataset", "co2"], "mlp takes images, a table or labelled texts, but co2 is a time series"),
    (["train", "text-cnn", "--dataset", "fashion-mnist"], "text-cnn takes labelled texts, but fashion-mnist is images"),
    ([*T, "--set", "model=gpt"], "gpt takes a text corpus, but digits is images"),
    ([*T, "--set", "model=transformer-encoder", "--dataset", "co2"], "transformer-encoder takes images or labelled"),
    ([*LM, "--set", "model=vae"], "vae takes images, but tinyshakespeare is a text corpus"),
    ([*T, "--data-file", "{d}/notes.txt"], "--data-file (your own file) has no meaning for digits"),
    (["train", "mnist-simple-cnn", "--data-file", "{d}/notes.txt"], "--data-file (your own file) has no meaning for mnist"),
    ([*T, "--column", "v"], "--column names a column of the CSV given with --data-file"),
    ([*LM, "--data-file", "{d}/notes.txt", "--column", "v"], "--column (the CSV column of a series) has no meaning for tinyshakespeare"),
    ([*LM, "--data-file", ""], "--data-file must not be empty"),
    # ---- train: your own tables and labelled texts ----
    (["train", "mlp", "--data-file", "{d}/tab.csv", "--target", "nope"], "has no column 'nope' (--target); its columns are a, b, y"),
    (["train", "mlp", "--data-file", "{d}/tab-one.csv", "--target", "y"], "the target 'y' holds one value only"),
    (["train", "mlp", "--data-file", "{d}/tab-garbage.csv", "--target", "y"], "column 'a' holds numbers, but row 7 holds 'abc'"),
    (["train", "mlp", "--data-file", "{d}/tab-latin.csv", "--target", "y"], "is not UTF-8 text (undecodable byte"),
    (["train", "mlp", "--data-file", "{d}/header.csv", "--target", "v"], "has a header but no rows of data"),
    (["train", "mlp", "--data-file", "{d}/nothing.csv", "--target", "v"], "Table file {d}/nothing.csv does not exist"),
    (["train", "mlp", "--data-file", "{d}/tab-split.csv", "--target", "y", "--split-column", "part"], "the split column holds 'later'"),
    (["train", "mlp", "--data-file", "{d}/tab-unseen.csv", "--target", "y", "--split-column", "part"], "label 'c' of the validation or test rows never appear"),
    (["train", "mlp", "--data-file", "{d}/tab.csv", "--target", "y", "--task", "guess"], "argument --task: invalid choice: 'guess'"),
    (["train", "mlp", "--data-file", "{d}/tab.csv", "--target", "a", "--task", "regression", "--set", "model_args.label_smoothing=0.1"], "label_smoothing is for classifiers"),
    (["train", "mlp", "--data-file", "{d}/tab.csv", "--target", "y", "--task", "regression"], "--task regression needs numbers in 'y', but {d}/tab.csv holds 'no' there"),
    (["train", "mlp"], "Say what to train on: --data-dir FOLDER"),
    (["train", "mnist-simple-cnn", "--target", "y"], "--target (the column of a table to predict) has no meaning for mnist; the datasets that read it: breast-cancer"),
    ([*T, "--image-size", "big"], "--image-size must be HxW or N"),
    ([*T, "--image-size", "2x2"], "--image-size must be HxW or N"),
    (["train", "transformer-encoder", "--data-file", "{d}/texts.csv", "--text-column", "body"], "has no column 'body' (--text-column); its columns are label, review"),
    (["train", "transformer-encoder", "--data-file", "{d}/texts-one.csv", "--text-column", "review"], "the labels ('label') hold one value only"),
    (["train", "transformer-encoder", "--data-file", "{d}/texts.jsonl", "--text-column", "review"], "line 2 is not JSON"),
    (["train", "transformer-encoder", "--data-file", "{d}/texts.csv", "--text-column", "review", "--label-column", "review"], "--text-column and --label-column name the same column"),
    (["train", "text-cnn", "--data-file", "{d}/tab.csv", "--target", "y"], "text-cnn takes labelled texts, but table is a table"),
    (["train", "mnist-simple-cnn", "--data-dir", "{d}/zero"], "The training split of mnist holds no samples"),
    (["train", "mnist-simple-cnn", "--data-dir", "{d}/zero-test"], "The test split of mnist holds no samples"),
    (["train", "mnist-simple-cnn", "--data-dir", "{d}/broken"], "magic number"),
    (["train", "mnist-simple-cnn", "--data-dir", "{d}/truncated"], "is truncated or corrupt"),
    (["train", "mnist-simple-cnn", "--data-dir", "{tmp}/empty"], "MNIST is not on this machine"),
    ([*CSV, "--data-file", "{d}/commas.csv"], "holds no values, only separators"),
    ([*CSV, "--data-file", "{d}/two.csv", "--column", "zz"], "has no column 'zz'; its columns are a, b."),
    ([*CSV, "--data-file", "{d}/two.csv"], "Name the column to forecast with --column NAME"),
    ([*CSV, "--data-file", "{d}/gap.csv", "--column", "v"], "has a gap: line 3"),
    ([*CSV, "--data-file", "{d}/words.csv"], "which is not a number"),
    ([*CSV, "--data-file", "{d}/header.csv"], "has a header but no rows of data"),
    ([*CSV, "--data-file", "{d}/empty.txt"], "is empty"),
    ([*CSV, "--data-file", "{d}/nothere.csv"], "does not exist"),
    ([*CSV, "--dataset", "csv-file"], "The csv-file dataset needs --data-file PATH"),
    ([*CSV, "--data-file", "{d}/series.csv", "--set", "data.options.horizon=0"], "data.options.horizon must be a"),
    ([*LM, "--data-file", "{d}/empty.txt"], "is empty"),
    ([*LM, "--data-file", "{d}/blank.txt"], "is empty"),
    ([*LM, "--data-file", "{d}/binary.bin"], "looks binary"),
    ([*LM, "--data-file", "{d}/latin1.txt"], "is not UTF-8 text"),
    ([*LM, "--data-file", "{d}/nothere.txt"], "does not exist"),
    ([*LM, "--data-file", "{d}/notes.txt"], "too short for windows of data.seq_len"),
    ([*LM, "--dataset", "text-file"], "The text-file dataset needs --data-file PATH"),
    # ---- train: recipes, run folders and --out ----
    (["train", "mnist-cnn"], "Unknown recipe 'mnist-cnn'. Did you mean 'mnist-simple-cnn'?"),
    (["train", "{tmp}/missing.yaml"], "Recipe file"),
    ([*T, "--out", ""], "--out must name a folder, not an empty string."),
    ([*T, "--out", "   "], "--out must name a folder"),
    ([*T, "--out", "{d}/notes.txt"], "is an existing file; give a folder."),
    ([*T, "--out", "{d}/notes.txt/run"], "which is a file, not a folder."),
    ([*T, "--out", "/proc/nnzoo-run/x"], "cannot write in /proc"),
    ([*T, "--out", "{clf}"], "already holds a run: pass --resume to continue it"),
    ([*T, "--resume", "--out", "{tmp}/nothing"], "Nothing to resume in"),
    ([*T, "--resume", "--out", "{noconfig}"], "it has no 'config'"),
    ([*T, "--resume", "--out", "{garbage}"], "is not a readable nnzoo checkpoint"),
    ([*T, "--resume", "--out", "{clf}", "--set", "model_args.hidden=[8]"], "cannot change when resuming"),
    ([*T, "--resume", "--out", "{clf}", "--lr", "-1"], "--lr must be a positive number"),
    ([*T, "--nproc", "0"], "--nproc must be a positive whole number"),
    (["train"], "the following arguments are required: recipe"),
    ([*T, "--bogus"], "unrecognized arguments: --bogus"),
    # ---- eval ----
    (["eval", "{tmp}/nothing"], "is not a folder: give the run folder"),
    (["eval", "{tmp}"], "holds no checkpoint (looked for checkpoints/best.pt or last.pt)."),
    (["eval", "{d}/notes.txt"], "is not a folder"),
    (["eval", "{noconfig}"], "best.pt is damaged or not a run's checkpoint: it has no 'config'."),
    (["eval", "{nomodel}"], "it has no 'model'"),
    (["eval", "{badconfig}"], "its 'config' is a list, not a dict"),
    (["eval", "{badspec}"], "its config or data description is unreadable"),
    (["eval", "{badweights}"], "which is not a tensor"),
    (["eval", "{othersize}"], "does not belong to the mlp its config describes: 'net.1.weight' is"),
    (["eval", "{othermodel}"], "does not belong to the mlp its config describes: it lacks"),
    (["eval", "{garbage}"], "is not a readable nnzoo checkpoint"),
    (["eval", "{schema9}"], "is not an nnzoo checkpoint of schema 1"),
    (["eval", "{clf}", "--device", "tpu"], "--device must be one of"),
    (["eval", "{clf}", "--bogus"], "unrecognized arguments: --bogus"),
    (["eval"], "the following arguments are required: run_dir"),
    # ---- predict ----
    (["predict", "{clf}", "{d}/digit.png", "--top-k", "0"], "--top-k must be at least 1, not 0."),
    (["predict", "{clf}", "{d}/digit.png", "--top-k", "-1"], "--top-k must be at least 1"),
    (["predict", "{clf}", "{d}/digit.png", "--top-k", "x"], "argument --top-k: invalid int value"),
    (["predict", "{clf}"], "Give at least one image file to predict."),
    (["predict", "{clf}", "{d}/notes.txt"], "is not an image nnzoo can read"),
    (["predict", "{clf}", "{d}/digit.png", "--column", "x"], "--column has no meaning for"),
    (["predict", "{clf}", "--text", "hi"], "--text has no meaning for"),
    (["predict", "{tab}", "{d}/tab-nocols.csv"], "lacks the column 'b' the model was trained on; it needs a, b"),
    (["predict", "{tab}"], "Give one table file (CSV, TSV or Parquet) of rows to predict"),
    (["predict", "{tab}", "{d}/tab.csv", "--text", "hi"], "--text has no meaning for"),
    (["predict", "{tab}", "{d}/tab.csv", "--out", "{d}"], "--out {d} is a folder"),
    (["predict", "{clf}", "{d}/nope.png"], "does not exist"),
    (["predict", "{clf}", "{d}/digit.png", "--device", "tpu"], "--device must be one of"),
    (["predict", "{lm}", "{d}/digit.png"], "predict takes classifiers and forecasters"),
    (["predict", "{cgan}", "{d}/digit.png"], "predict takes classifiers and forecasters"),
    (["predict", "{noconfig}", "{d}/digit.png"], "it has no 'config'"),
    (["predict", "{othersize}", "{d}/digit.png"], "does not belong to the mlp"),
    (["predict", "{tmp}/nothing", "{d}/digit.png"], "is not a folder"),
    # ---- generate: language models ----
    (["generate", "{lm}", "--temperature", "0"], "--temperature must be a positive, finite number, not 0.0."),
    (["generate", "{lm}", "--temperature", "-1"], "--temperature must be a positive, finite number"),
    (["generate", "{lm}", "--temperature", "inf"], "--temperature must be a positive, finite number"),
    (["generate", "{lm}", "--temperature", "nan"], "--temperature must be a positive, finite number"),
    (["generate", "{lm}", "--temperature", "hot"], "argument --temperature: invalid float value"),
    (["generate", "{lm}", "--length", "0"], "--length must be a whole number from 1 to 20000, not 0."),
    (["generate", "{lm}", "--length", "-5"], "--length must be a whole number from 1 to 20000"),
    (["generate", "{lm}", "--length", "100000"], "--length must be a whole number from 1 to 20000"),
    (["generate", "{lm}", "--top-k", "0"], "--top-k must be a whole number of at least 1, not 0."),
    (["generate", "{lm}", "--top-k", "-2"], "--top-k must be a whole number of at least 1"),
    (["generate", "{lm}", "--seed", "-1"], "--seed must be a whole number from 0 to 9223372036854775807"),
    (["generate", "{lm}", "--seed", "99999999999999999999999"], "--seed must be a whole number from 0 to"),
    (["generate", "{lm}", "--label", "1"], "--label and --from are for image models"),
    (["generate", "{lm}", "--from", "{d}/digit.png"], "--label and --from are for image models"),
    (["generate", "{lm}", "--out", "{tmp}/text.png"], "--out writes the image grid of a GAN or VAE"),
    (["generate", "{lm}", "--acrostic", "QZ"], "The model's vocabulary lacks 'QZ'"),
    (["generate", "{lm}", "--prompt", "QQQ"], "No character of the prompt is in the model's vocabulary."),
    (["generate", "{gpt}", "--acrostic", "春"], "--acrostic needs a model trained on poems"),
    (["generate", "{clf}", "--prompt", "hi"], "which does not generate; generate works with language models"),
    # ---- generate: GANs and autoencoders ----
    (["generate", "{cgan}", "--n", "0"], "--n must be a whole number from 1 to 1024 (one grid), not 0."),
    (["generate", "{cgan}", "--n", "-1"], "--n must be a whole number from 1 to 1024"),
    (["generate", "{cgan}", "--n", "100000"], "--n must be a whole number from 1 to 1024"),
    (["generate", "{cgan}", "--label", "10"], "--label must be a class number from 0 to 9"),
    (["generate", "{cgan}", "--label", "-1"], "--label must be a class number from 0 to 9"),
    (["generate", "{cgan}", "--top-k", "5"], "--top-k is for language models"),
    (["generate", "{cgan}", "--prompt", "x"], "--prompt is for language models"),
    (["generate", "{cgan}", "--seed", "-4"], "--seed must be a whole number from 0"),
    (["generate", "{cgan}", "--from", "{d}/digit.png"], "has no encoder, so it cannot reconstruct images"),
    (["generate", "{cgan}", "--out", "{clf}"], "is a folder; give a file name."),
    (["generate", "{cgan}", "--out", "{cgan}/checkpoints/best.pt"], "would overwrite the run's own best.pt"),
    (["generate", "{cgan}", "--out", "{cgan}/checkpoints/grid.png"], "would overwrite the run's own grid.png"),
    (["generate", "{cgan}", "--out", "{cgan}/config.yaml"], "would overwrite the run's own config.yaml"),
    (["generate", "{cgan}", "--out", "{d}/notes.txt/x.png"], "which is a file, not a folder."),
    (["generate", "{cgan}", "--out", ""], "--out must name a file, not an empty string."),
    (["generate", "{cgan}", "--out", "/proc/nnzoo-grid/x.png"], "cannot write in /proc"),
    (["generate", "{cgan}", "--out", "{tmp}/grid.txt"], "give a file name ending in .png"),
    (["generate", "{ae}"], "is a plain autoencoder: it has no prior to sample from"),
    (["generate", "{ae}", "--from", "{d}/notes.txt"], "is not an image nnzoo can read"),
    (["generate", "{ae}", "--from", "{d}/digit.png", "--label", "1"], "--label and --from do not go together"),
    (["generate", "{noconfig}"], "it has no 'config'"),
    (["generate", "{othermodel}"], "does not belong to the mlp"),
    (["generate"], "the following arguments are required: run_dir"),
    # ---- export ----
    (["export", "{clf}", "--format", "tflite"], "--format must be one of onnx, torchscript"),
    (["export", "{clf}", "--out", "{tmp}"], "is a folder; give a file name."),
    (["export", "{clf}", "--out", "{clf}/checkpoints/best.pt"], "would overwrite the run's own best.pt"),
    (["export", "{clf}", "--out", "{clf}/checkpoints/last.pt"], "would overwrite the run's own last.pt"),
    (["export", "{clf}", "--out", "{clf}/checkpoints/model.onnx"], "would overwrite the run's own model.onnx"),
    (["export", "{clf}", "--out", "{clf}/config.yaml"], "would overwrite the run's own config.yaml"),
    (["export", "{clf}", "--out", "{clf}/metrics"], "would overwrite the run's own metrics.json"),
    (["export", "{clf}", "--out", ""], "--out must name a file, not an empty string."),
    (["export", "{clf}", "--out", "{d}/notes.txt/m.onnx"], "which is a file, not a folder."),
    (["export", "{clf}", "--out", "/proc/nnzoo-export/m.onnx"], "cannot write in /proc"),
    (["export", "{noconfig}"], "it has no 'config'"),
    (["export", "{othersize}"], "does not belong to the mlp"),
    (["export", "{tmp}/nothing"], "is not a folder"),
    # ---- attention ----
    (["attention", "{gpt}", "春眠", "--layer", "0"], "--layer 0 does not exist: this model has 1 layers"),
    (["attention", "{gpt}", "春眠", "--layer", "99"], "--layer 99 does not exist"),
    (["attention", "{gpt}", "春眠", "--layer", "-1"], "--layer -1 does not exist"),
    (["attention", "{gpt}", "春眠", "--head", "0"], "--head 0 does not exist: this model has 2 heads"),
    (["attention", "{gpt}", "春眠", "--head", "99"], "--head 99 does not exist"),
    (["attention", "{gpt}", "春眠", "--layer", "one"], "argument --layer: invalid int value"),
    (["attention", "{gpt}", ""], "Give the text to look at"),
    (["attention", "{gpt}", "QQQ"], "No character of the input is in the model's vocabulary."),
    (["attention", "{gpt}", "春眠", "--out", "{d}/notes.txt"], "is an existing file; give a folder."),
    (["attention", "{gpt}", "春眠", "--out", ""], "--out must name a folder, not an empty string."),
    (["attention", "{gpt}", "春眠", "--out", "{gpt}/checkpoints"], "would overwrite the run's own checkpoints"),
    (["attention", "{gpt}", "春眠", "--out", "/proc/nnzoo-maps"], "cannot write in /proc"),
    (["attention", "{clf}", "x"], "which has no attention to show"),
    (["attention", "{noconfig}", "x"], "it has no 'config'"),
    (["attention", "{gpt}"], "the following arguments are required: INPUT"),
    # ---- serve (every case fails before a socket is opened) ----
    (["serve", "{clf}", "--port", "70000"], "--port must be between 0 and 65535, not 70000."),
    (["serve", "{clf}", "--port", "-1"], "--port must be between 0 and 65535"),
    (["serve", "{clf}", "--port", "http"], "argument --port: invalid int value"),
    (["serve", "{clf}", "--max-batch", "0"], "--max-batch must be at least 1, not 0."),
    (["serve", "{clf}", "--max-batch", "-3"], "--max-batch must be at least 1"),
    (["serve", "{clf}", "--batch-wait-ms", "-1"], "--batch-wait-ms must be between 0 and 1000"),
    (["serve", "{clf}", "--batch-wait-ms", "5000"], "--batch-wait-ms must be between 0 and 1000"),
    (["serve", "{clf}", "--host", " "], "--host must name an address"),
    (["serve", "{tmp}/nothing"], "is not a folder"),
    (["serve", "{noconfig}"], "it has no 'config'"),
    (["serve", "{othermodel}"], "does not belong to the mlp"),
    (["serve"], "the following arguments are required: RUN_DIR"),
    # ---- report ----
    (["report", "{tmp}/nothing"], "is not a folder"),
    (["report", "{tmp}"], "holds no checkpoint (looked for checkpoints/last.pt)."),
    (["report", "{noconfig}"], "it has no 'config'"),
    (["report", "{othersize}"], "does not belong to the mlp"),
    (["report", "{badconfig}"], "its 'config' is a list"),
    (["report", "{clf}", "--device", "tpu"], "--device must be one of"),
    # ---- bench ----
    (["bench", "digits-mlp", "--seconds", "0"], "--seconds must be more than 0 and at most 600, not 0."),
    (["bench", "digits-mlp", "--seconds", "1e9"], "--seconds must be more than 0 and at most 600"),
    (["bench", "digits-mlp", "--seconds", "soon"], "argument --seconds: invalid float value"),
    (["bench", "digits-mlp", "--device", "tpu"], "--device must be one of"),
    # ---- summary, list, the verb itself ----
    (["summary", "foo"], "Unknown model 'foo'."),
    (["summary", "mlp", "--dataset", "imagenet"], "Unknown dataset 'imagenet'."),
    (["summary", "mlp", "--dataset", "tinyshakespeare"], "mlp takes images, a table or labelled texts, but tinyshakespeare is a text corpus"),
    (["summary", "gpt"], "gpt takes a text corpus, but mnist is images"),
    (["summary", "mlp", "--set", "dropout=x"], "Setting 'model_args.dropout' must be a number, not 'x'."),
    (["summary", "mlp", "--set", "hidden=[0]"], "mlp hidden sizes must be positive"),
    (["summary", "mlp", "--set", "x"], "--set expects KEY=VALUE, got 'x'."),
    (["summary", "mlp", "--set", "nope=1"], "Model 'mlp' has no argument 'nope'"),
    (["summary", "simple-cnn", "--dataset", "digits"], "needs input of at least 10x10"),
    (["summary", "rnn", "--set", "cell=transformer"], "cell must be one of lstm, gru, rnn"),
    (["summary"], "the following arguments are required: model"),
    (["list", "foo"], "argument what: invalid choice: 'foo'"),
    (["list"], "the following arguments are required: what"),
    (["list", "models", "extra"], "unrecognized arguments: extra"),
    ([], "the following arguments are required: VERB (see nnzoo --help)"),
    (["bogus"], "argument VERB: invalid choice: 'bogus'"),
    (["--bogus"], "the following arguments are required: VERB"),
]  # fmt: skip


# ---- the run folders and files the table needs, built once -----------------------------------------------------
@pytest.fixture(scope="session")
def gpt_run(serve_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-layer, two-head GPT trained one step on the poems of ``serve_runs`` (for attention)."""
    out = tmp_path_factory.mktemp("bad-inputs-gpt") / "gpt"
    argv = ["train", "tang-poems-char-gpt", "--dataset", "text-file", "--data-file", str(serve_runs["poems"].parent /
            "poems.txt"), "--out", str(out), "--max-steps", "1", "--quiet", "--set", "train.num_threads=1",
            "--set", "data.seq_len=16", "--set", "model_args.n_layer=1", "--set", "model_args.n_head=2",
            "--set", "model_args.dim=16", "--set", "model_args.context=16"]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(out.parent / "cache"))
        assert main(argv) == 0
    return out


def _damaged(root: Path, clf: Path, other: Path) -> dict[str, Path]:
    """Copies of the classifier run whose checkpoints are broken in one way each."""
    good = torch.load(clf / "checkpoints" / "best.pt", weights_only=True)
    small = {k: v[..., :3] if v.dim() else v for k, v in good["model"].items()}  # same names, other sizes
    foreign = torch.load(other / "checkpoints" / "best.pt", weights_only=True)["model"]
    broken = {
        "noconfig": {k: v for k, v in good.items() if k != "config"},
        "nomodel": {k: v for k, v in good.items() if k != "model"},
        "badconfig": {**good, "config": [1, 2]},
        "badspec": {**good, "spec": {"name": "digits", "bogus": 1}},
        "badweights": {**good, "model": {**good["model"], "net.1.weight": [1, 2, 3]}},
        "othersize": {**good, "model": small},
        "othermodel": {**good, "model": foreign},
        "schema9": {**good, "schema": 9},
    }
    runs = {}
    for name, payload in broken.items():
        runs[name] = root / name
        shutil.copytree(clf, runs[name])
        for file in ("best.pt", "last.pt"):
            torch.save(payload, runs[name] / "checkpoints" / file)
    runs["garbage"] = root / "garbage"
    shutil.copytree(clf, runs["garbage"])
    for file in ("best.pt", "last.pt"):
        (runs["garbage"] / "checkpoints" / file).write_bytes(b"not a checkpoint")
    return runs


def _input_files(d: Path) -> None:
    from conftest import digits_as_mnist

    d.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    Image.fromarray(digits_as_mnist(1, 1)[0][0]).save(d / "digit.png")
    (d / "notes.txt").write_text("a few words, not an image and far too short to train on\n", encoding="utf-8")
    (d / "empty.txt").write_text("", encoding="utf-8")
    (d / "blank.txt").write_text("  \n\n\t\n", encoding="utf-8")
    (d / "binary.bin").write_bytes(b"\x00\x01\x02" * 100)
    (d / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1") * 50)
    (d / "commas.csv").write_text(",,,\n,,\n,\n", encoding="utf-8")
    (d / "two.csv").write_text("a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(50)), encoding="utf-8")
    (d / "gap.csv").write_text("v,w\n1,1\n,2\n3,3\n", encoding="utf-8")
    (d / "words.csv").write_text("v\n1\ntwo\n3\n", encoding="utf-8")
    (d / "header.csv").write_text("v\n", encoding="utf-8")
    (d / "series.csv").write_text("v\n" + "".join(f"{np.sin(i / 3):.4f}\n" for i in range(300)), encoding="utf-8")
    table = "a,b,y\n" + "".join(f"{i},{i % 3},{'yes' if i % 2 else 'no'}\n" for i in range(40))
    (d / "tab.csv").write_text(table, encoding="utf-8")
    (d / "tab-one.csv").write_text("a,y\n" + "".join(f"{i},same\n" for i in range(20)), encoding="utf-8")
    (d / "tab-garbage.csv").write_text("a,y\n" + "".join(f"{'abc' if i == 6 else i},{i % 2}\n" for i in range(40)),
                                       encoding="utf-8")  # fmt: skip
    (d / "tab-latin.csv").write_bytes(b"a,y\n1,caf\xff\n")
    (d / "tab-split.csv").write_text("a,y,part\n" + "".join(f"{i},{i % 2},{'later' if i == 3 else 'train'}\n"
                                                             for i in range(20)), encoding="utf-8")  # fmt: skip
    (d / "tab-unseen.csv").write_text("a,y,part\n" + "".join(f"{i},{'c' if i == 19 else i % 2},"
                                                              f"{'test' if i > 15 else 'train'}\n" for i in range(20)),
                                      encoding="utf-8")  # fmt: skip
    (d / "tab-nocols.csv").write_text("a,c\n1,2\n", encoding="utf-8")
    (d / "texts.csv").write_text("label,review\n" + "".join(f"{i % 2},text {i}\n" for i in range(30)), encoding="utf-8")
    (d / "texts-one.csv").write_text("label,review\n" + "".join(f"1,text {i}\n" for i in range(30)), encoding="utf-8")
    (d / "texts.jsonl").write_text('{"review": "ok", "label": 1}\n{"review": broken\n', encoding="utf-8")
    for name, n_train, n_test in (("zero", 0, 5), ("zero-test", 5, 0)):
        folder = d / name / "mnist"
        folder.mkdir(parents=True)
        for f, n in zip(("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                         "t10k-labels-idx1-ubyte"), (n_train, n_train, n_test, n_test)):  # fmt: skip
            write_idx(folder / f, np.zeros((n, 28, 28) if "images" in f else (n,)))
    for name, blob in (("broken", b"\x00\x00\x0c\x03broken"), ("truncated", None)):
        folder = d / name / "mnist"
        folder.mkdir(parents=True)
        for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                  "t10k-labels-idx1-ubyte"):  # fmt: skip
            write_idx(folder / f, np.zeros((4, 28, 28) if "images" in f else (4,)))
        first = folder / "train-images-idx3-ubyte"
        first.write_bytes(blob if blob is not None else first.read_bytes()[:-7])


@pytest.fixture(scope="session")
def places(serve_runs: dict[str, Path], gpt_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad-inputs")
    _input_files(root / "d")
    runs = {"clf": serve_runs["digits"], "lm": serve_runs["poems"], "cgan": serve_runs["cgan"], "ae": serve_runs["ae"],
            "gpt": gpt_run, "d": root / "d"}  # fmt: skip
    runs.update(_damaged(root, serve_runs["digits"], serve_runs["cgan"]))
    runs["tab"] = root / "tab"  # a table classifier, two steps
    assert main(["train", "mlp", "--data-file", str(root / "d" / "tab.csv"), "--target", "y", "--out", str(runs["tab"]),
                 "--max-steps", "2", "--quiet"]) == 0  # fmt: skip
    return runs


def _listing(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under these folders (but caches) with its size and modification time."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for root in roots for p in root.rglob("*")
            if p.is_file() and "cache" not in p.relative_to(root).parts}  # fmt: skip


def _run(capsys: pytest.CaptureFixture, argv: list[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(argv)
    return code, capsys.readouterr().err


def _assert_one_error(code: int, err: str, message: str) -> None:
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code != 0, err
    assert "Traceback" not in err, err
    assert len(errors) == 1, err
    assert message in errors[0], errors[0]


# ---- the table ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,message", CASES, ids=[" ".join(a)[:70] for a, _ in CASES])
def test_bad_input_is_one_error_line_and_writes_nothing(places: dict[str, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture, argv: list[str],
                                                        message: str) -> None:  # fmt: skip
    names = {k: str(v) for k, v in places.items()} | {"tmp": str(tmp_path)}
    argv = [a.format(**names) for a in argv]
    message = message.format(**names)
    roots = [tmp_path, *{p.parent for k, p in places.items()}]
    before = _listing(*roots)
    code, err = _run(capsys, argv)
    _assert_one_error(code, err, message)
    assert _listing(*roots) == before, "a refused command wrote or changed files"
    assert not (tmp_path / "runs").exists()


def test_the_table_is_large_and_covers_every_verb() -> None:
    assert len(CASES) >= 150
    verbs = {a[0] for a, _ in CASES if a}
    assert verbs >= {
        "train",
        "eval",
        "predict",
        "generate",
        "export",
        "serve",
        "report",
        "summary",
        "attention",
        "list",
    }


def test_a_finished_run_survives_bad_commands(places: dict[str, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    """Hash every file of finished runs, throw bad commands at them, hash again: not a byte changed."""
    clf, cgan = tmp_path / "clf", tmp_path / "cgan"
    shutil.copytree(places["clf"], clf)
    shutil.copytree(places["cgan"], cgan)
    img, notes = places["d"] / "digit.png", places["d"] / "notes.txt"

    def hashes() -> dict[str, str]:
        files = [p for run in (clf, cgan) for p in sorted(run.rglob("*")) if p.is_file()]
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    before = hashes()
    bad = [["eval", clf, "--device", "tpu"], ["predict", clf, img, "--top-k", "0"], ["predict", clf, notes],
           ["export", clf, "--out", clf / "checkpoints" / "best.pt"], ["export", clf, "--out", clf / "config.yaml"],
           ["export", clf, "--out", clf / "metrics.json"], ["export", clf, "--format", "tflite"],
           ["generate", clf, "--prompt", "x"], ["generate", cgan, "--out", cgan / "checkpoints" / "last.pt"],
           ["generate", cgan, "--n", "0"], ["generate", cgan, "--out", cgan / "config.yaml"],
           ["generate", cgan, "--label", "99"], ["report", clf, "--device", "tpu"],
           ["train", "digits-mlp", "--out", clf], ["train", "digits-mlp", "--out", clf, "--resume", "--lr", "inf"],
           ["train", "digits-mlp", "--out", clf, "--resume", "--set", "model_args.hidden=[8]"],
           ["train", "digits-mlp", "--out", clf, "--resume", "--set", "train.pct_start=3"],
           ["train", "mnist-cgan", "--out", cgan, "--resume", "--set", "model_args.latent=3"],
           ["attention", clf, "x", "--out", clf / "checkpoints"]]  # fmt: skip
    for argv in bad:
        code, err = _run(capsys, [str(a) for a in argv])
        _assert_one_error(code, err, "")
    assert hashes() == before


def test_tiny_temperatures_decode_greedily(places: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    """Any positive temperature works: below 1e-4 every seed writes the same, most likely text; above it the
    logits are scaled with their maximum subtracted, so a small temperature never overflows to inf or nan."""
    from nnzoo.tasks.language_model.sampling import scale_logits

    texts = set()
    for temperature, seed in (("1e-45", "1"), ("1e-300", "2"), ("5e-324", "3"), ("0.00001", "4")):
        code = main(["generate", str(places["lm"]), "--temperature", temperature, "--length", "12", "--seed", seed])
        out, err = capsys.readouterr()
        assert code == 0 and "error" not in err, err
        texts.add(out)
    assert len(texts) == 1
    logits = torch.tensor([3e4, -2e4, 1.0, 3e4])
    for t in (1e-4, 1e-3, 0.5, 10.0):
        probs = torch.softmax(scale_logits(logits, t), -1)
        assert torch.isfinite(probs).all() and probs[0] == probs[3] and probs.sum().item() == pytest.approx(1)
    assert scale_logits(logits, 1e-45).tolist() == [0.0, -float("inf"), -float("inf"), 0.0]


def test_configs_built_in_python_are_checked_too() -> None:
    """The same bounds hold for a TrainConfig or DataConfig made in Python, which never passed through --set."""
    from nnzoo import TrainConfig, load_dataset
    from nnzoo.errors import UserError

    for kwargs, message in [(dict(epochs=float("inf")), "--epochs must be a finite number, not inf"),
                            (dict(clip_grad_norm=float("nan")), "train.clip_grad_norm must be a finite number"),
                            (dict(seed=2**64), "--seed must be in [0, 9223372036854775807]"),
                            (dict(momentum=-1.0), "train.momentum must be in [0, 1)")]:  # fmt: skip
        with pytest.raises(UserError) as e:
            TrainConfig(**kwargs).validate()
        assert message in str(e.value)
    with pytest.raises(UserError, match="data.limit_train must be a positive whole number, not -1"):
        load_dataset("digits", limit_train=-1)


def test_a_recipes_data_options_follow_its_dataset() -> None:
    """Options the recipe gave its own dataset go when another dataset does not read them; a given one stays
    (and is refused if that dataset does not read it either)."""
    from nnzoo import api

    poems = api.make_config("tang-poems-char-lstm")
    assert poems.data.options == {"regular_only": True}
    assert api.make_config("tang-poems-char-lstm", overrides={"dataset": "tinyshakespeare"}).data.options == {}
    assert api.make_config("tang-poems-char-lstm", overrides={"dataset": "tang300"}).data.options == {
        "regular_only": True
    }
    co2 = api.make_config("co2-lstm", overrides={"dataset": "sunspots"})
    assert co2.data.options == api.make_config("co2-lstm").data.options  # sunspots reads the same three


def test_exponent_numbers_are_numbers() -> None:
    """YAML 1.1 reads 3e-4 as text; --set reads it as the number a user means."""
    from nnzoo.config import parse_set

    assert parse_set("train.lr=3e-4") == ("train.lr", 0.0003)
    assert parse_set("train.epochs=1e3") == ("train.epochs", 1000.0)
    assert parse_set("model_args.activation=relu") == ("model_args.activation", "relu")
