"""`nnzoo predict` on the images people make: accuracy on real Fashion-MNIST test images written as files in three
styles, beside the accuracy on the same images as tensors (the README's "predict on your own image" numbers).

    python bench/predict_files.py RUN_DIR N                 # score an existing fashion-mnist run on N test images
    python bench/predict_files.py RUN_DIR N LIMIT EPOCHS    # first train fashion-mnist-simple-cnn-fast into RUN_DIR

Styles: straight 28x28 PNGs; inverted and upscaled to 280x280 (black on white, as a paint program draws);
pasted with margins at several sizes into 200x200 white JPEGs (quality 85).
"""

import sys
import tempfile
from pathlib import Path

from PIL import Image

from nnzoo import api
from nnzoo.data import load_dataset
from nnzoo.images import load_images
from nnzoo.runs import trainer_for

DATA = "/usr/share/datasets"  # Debian's dataset-fashion-mnist


def main() -> None:
    run, n = Path(sys.argv[1]), int(sys.argv[2])
    if len(sys.argv) > 4:
        sets = [("data.limit_train", int(sys.argv[3])), ("train.epochs", int(sys.argv[4])), ("data.val_size", 500)]
        api.train("fashion-mnist-simple-cnn-fast", out=run, overrides={"data_dir": DATA}, sets=sets, progress=False)
    data = load_dataset("fashion-mnist", data_dir=DATA, val_size=0, limit_test=n)
    loaded = api.load_run(run)
    runner = trainer_for(loaded, "cpu")
    x, y = data.test.x, data.test.y

    def accuracy(inputs):
        return float((runner.predict(inputs).argmax(1) == y).float().mean())

    styles = {"straight 28x28 PNG": [], "inverted 280x280 PNG": [], "pasted in 200x200 JPEG": []}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for i in range(n):
            a = x[i, 0].numpy()
            Image.fromarray(a).save(p := out / f"s{i}.png")
            styles["straight 28x28 PNG"].append(p)
            Image.fromarray(255 - a).resize((280, 280), Image.Resampling.BICUBIC).save(p := out / f"i{i}.png")
            styles["inverted 280x280 PNG"].append(p)
            side = 56 + 28 * (i % 4)
            canvas = Image.new("L", (200, 200), 255)
            small = Image.fromarray(255 - a).resize((side, side), Image.Resampling.BICUBIC)
            canvas.paste(small, (10 + (i * 7) % (190 - side), 10 + (i * 13) % (190 - side)))
            canvas.convert("RGB").save(p := out / f"j{i}.jpg", quality=85)
            styles["pasted in 200x200 JPEG"].append(p)
        print(f"tensors: {100 * accuracy(x):.1f}%")
        for name, paths in styles.items():
            print(f"{name}: {100 * accuracy(load_images(paths, loaded.spec)):.1f}%")


if __name__ == "__main__":
    main()
