"""Tables through the same verbs as images: `nnzoo train mlp --data-file t.csv --target y` classifies or regresses,
beside baselines fitted in the run; predict writes answers beside the rows; export takes the raw columns; bad
tables are one sentence. Every table here is written by the test itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_cli

import nnzoo
from nnzoo.data import load_dataset

FAST = ["--quiet", "--set", "train.num_threads=1"]


def _table(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """Two numeric columns (one with gaps), a text column, an id column; a label and a number to predict."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    shift = pd.Series(colour).map({"red": 1.5, "green": 0.0, "blue": -1.5}).to_numpy()
    df = pd.DataFrame({"id": [f"row-{i}" for i in range(n)], "a": a, "b": b, "colour": colour})
    df.loc[rng.choice(n, n // 12, replace=False), "b"] = np.nan  # gaps: the training median fills them
    df.loc[rng.choice(n, n // 24, replace=False), "colour"] = None
    df["kind"] = np.where(a + shift > 0, "yes", "no")
    df["price"] = 3 * a - 2 * np.nan_to_num(df["b"].to_numpy()) + shift + rng.normal(scale=0.1, size=n) + 50
    return df


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tables")
    df = _table()
    df.drop(columns=["price"]).to_csv(d / "kinds.csv", index=False)
    df.drop(columns=["kind"]).to_csv(d / "prices.tsv", index=False, sep="\t")
    return {"dir": d, "kinds": d / "kinds.csv", "prices": d / "prices.tsv"}


@pytest.fixture(scope="module")
def runs(tables: dict[str, Path]) -> dict[str, Path]:
    from nnzoo.cli import main

    out = {}
    for name, target, extra in (("kinds", "kind", ["--epochs", "40"]), ("prices", "price", ["--epochs", "60"])):
        run = tables["dir"] / f"run-{name}"
        argv = ["train", "mlp", "--data-file", str(tables[name]), "--target", target, "--out", str(run), *extra, *FAST]
        assert main(argv) == 0
        out[name] = run
    return out


def test_a_label_column_is_classified_beside_the_majority_and_a_logistic_regression(runs: dict[str, Path]) -> None:
    metrics = json.loads((runs["kinds"] / "metrics.json").read_text())
    test = metrics["test"]
    assert nnzoo.load_run(runs["kinds"]).spec.task == "classification"
    assert test["accuracy"] > test["majority_baseline"] + 0.2
    assert 0 < test["macro_f1"] <= 1 and "logistic_regression_accuracy" in test and "majority_baseline_macro_f1" in test
    spec = nnzoo.load_run(runs["kinds"]).spec
    assert spec.class_names == ["no", "yes"]
    assert "id" in spec.extra["table"]["dropped"]  # a value per row: left out, not one-hot encoded
    colour = next(c for c in spec.extra["table"]["categorical"] if c["name"] == "colour")
    assert colour["categories"] == ["blue", "green", "red"]


def test_a_numeric_column_is_regressed_beside_the_mean_and_a_ridge(runs: dict[str, Path]) -> None:
    test = json.loads((runs["prices"] / "metrics.json").read_text())["test"]
    assert nnzoo.load_run(runs["prices"]).spec.task == "regression"
    assert test["r2"] > 0.8 and test["mae"] < test["mean_baseline_mae"] / 2
    assert {"rmse", "ridge_baseline_mae", "ridge_baseline_r2", "mean_baseline_rmse"} <= set(test)
    assert (runs["prices"] / "report" / "predictions.png").is_file()


def test_the_split_is_seeded_stratified_80_10_10_and_a_split_column_is_respected(tables: dict[str, Path],
                                                                                  tmp_path: Path) -> None:  # fmt: skip
    kw = {"data_file": str(tables["kinds"]), "target": "kind"}
    one, two = load_dataset("table", **kw), load_dataset("table", **kw)
    assert (len(one.train), len(one.val), len(one.test)) == (192, 24, 24)
    assert torch.equal(one.test.x, two.test.x)  # the same split every time
    share = one.train.y.float().mean().item()
    assert abs(one.test.y.float().mean().item() - share) < 0.05  # each class in proportion
    df = _table().drop(columns=["price"])
    df["part"] = ["test" if i % 5 == 0 else "train" for i in range(len(df))]
    df.to_csv(tmp_path / "split.csv", index=False)
    given = load_dataset("table", data_file=str(tmp_path / "split.csv"), target="kind", split_column="part")
    assert len(given.test) == 48 and given.val is None and len(given.train) == 192
    assert "part" not in nnzoo.data.tables.TableEncoding.from_dict(given.spec.extra["table"]).columns


def test_task_forces_regression_or_classification(tmp_path: Path) -> None:
    df = pd.DataFrame({"x": np.arange(60) % 7, "stars": (np.arange(60) % 5) + 1})
    df.to_csv(tmp_path / "stars.csv", index=False)
    auto = load_dataset("table", data_file=str(tmp_path / "stars.csv"), target="stars")
    forced = load_dataset("table", data_file=str(tmp_path / "stars.csv"), target="stars", task="regression")
    assert auto.spec.task == "classification" and auto.spec.class_names == ["1", "2", "3", "4", "5"]
    assert forced.spec.task == "regression" and "--task regression" in forced.source


def test_predict_writes_the_answers_beside_the_rows(runs: dict[str, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    rows = _table(12, seed=5).drop(columns=["price", "kind"])
    rows["note"] = "unused"
    rows.to_csv(tmp_path / "new.csv", index=False)
    with pytest.warns(UserWarning, match="never saw the column 'note'; copied to the output unused"):
        code, out, err = run_cli(capsys, "predict", runs["kinds"], tmp_path / "new.csv")
    assert code == 0 and "12 rows" in out, err
    written = pd.read_csv(tmp_path / "new.predictions.csv")
    assert list(written.columns) == [*rows.columns, "kind", "kind_probability"]
    assert set(written["kind"]) <= {"yes", "no"} and written["note"].eq("unused").all()
    # the same rows through the dataset's own encoding give the same answers
    run = nnzoo.load_run(runs["kinds"])
    x = nnzoo.data.tables.encode_rows(run.spec, rows, "rows")
    with torch.no_grad():
        expected = [run.spec.class_names[int(i)] for i in run.model.eval()(x).argmax(1)]
    assert written["kind"].tolist() == expected
    # a second predict never overwrites the first; --out picks the file and JSON by its suffix
    with pytest.warns(UserWarning):
        assert run_cli(capsys, "predict", runs["kinds"], tmp_path / "new.csv")[0] == 0
        code, out, err = run_cli(capsys, "predict", runs["prices"], tmp_path / "new.csv", "--out", tmp_path / "p.json")
    assert (tmp_path / "new.predictions-2.csv").is_file()
    assert code == 0, err
    records = json.loads((tmp_path / "p.json").read_text())
    assert len(records) == 12 and all(np.isfinite(r["price"]) for r in records)


def test_export_takes_the_raw_columns_and_matches_pytorch(runs: dict[str, Path], tmp_path: Path) -> None:
    import onnxruntime as ort

    from nnzoo.tasks.tables import raw_inputs

    for name in ("kinds", "prices"):
        r = nnzoo.export(runs[name], "onnx", tmp_path / f"{name}.onnx")
        assert r["max_abs_diff"] <= 1e-4 and r["inputs"] == ["numeric", "categories"]
        run = nnzoo.load_run(runs[name])
        rows = _table(9, seed=7)
        rows.loc[0, "colour"] = "purple"  # never seen in training: the missing-or-unseen slot
        enc = nnzoo.data.tables.TableEncoding.from_dict(run.spec.extra["table"])
        numeric, codes = raw_inputs(enc, rows)
        session = ort.InferenceSession(r["path"], providers=["CPUExecutionProvider"])
        (got,) = session.run(None, {"numeric": numeric.numpy(), "categories": codes.numpy()})
        with torch.no_grad():
            want = run.model.eval()(nnzoo.data.tables.encode_rows(run.spec, rows, "rows"))
        if name == "prices":
            want = want * run.spec.extra["target_std"] + run.spec.extra["target_mean"]
        assert np.abs(got - want.numpy()).max() < 1e-3
        meta = json.loads(Path(r["meta"]).read_text())
        assert meta["categories"]["colour"] == ["blue", "green", "red"] and meta["target"] in ("kind", "price")


def test_penguins_bundled_with_text_columns_and_gaps_loads_offline() -> None:
    data = load_dataset("penguins")
    enc = data.spec.extra["table"]
    assert {c["name"] for c in enc["categorical"]} == {"island", "sex"}
    assert data.spec.class_names == ["Adelie", "Chinstrap", "Gentoo"]
    assert not torch.isnan(data.train.x).any()
    mass = load_dataset("penguins", target="body_mass_g")
    assert mass.spec.task == "regression" and "2 rows without a target dropped" in mass.source


def test_parquet_and_gbk_tables(tmp_path: Path) -> None:
    df = _table(60)
    df.to_parquet(tmp_path / "t.parquet")
    assert load_dataset("table", data_file=str(tmp_path / "t.parquet"), target="kind").spec.task == "classification"
    zh = pd.DataFrame({"城市": ["北京", "上海", "广州"] * 20, "面积": np.arange(60.0), "价格": np.arange(60.0) * 2})
    (tmp_path / "gbk.csv").write_bytes(zh.to_csv(index=False).encode("gb18030"))
    with pytest.warns(UserWarning, match="read it as GB18030"):
        data = load_dataset("table", data_file=str(tmp_path / "gbk.csv"), target="价格")
    assert data.spec.extra["table"]["categorical"][0]["categories"] == ["上海", "北京", "广州"]
