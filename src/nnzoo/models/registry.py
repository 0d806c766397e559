from ..registry import Registry

MODELS: Registry = Registry("model")

# The kinds of data each model takes (see data_kind): checked before any data is loaded or model built, so a text
# corpus given to an MLP is one sentence, not a dtype error deep in a matmul. A model missing here is not checked.
IMAGES, TEXT, TEXT_CLASSES, SERIES, TABLE = "images", "text", "text-classification", "series", "table"
_IMAGE_MODELS = ("mlp", "simple-cnn", "lenet5", "vit", "ae", "conv-ae", "denoising-ae", "vae", "conv-vae", "gan",
                 "dcgan", "cgan")  # fmt: skip
DATA_KINDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(_IMAGE_MODELS, (IMAGES,)),
    "mlp": (IMAGES, TABLE, TEXT_CLASSES),
    "text-cnn": (TEXT_CLASSES,),
    "bert-mlm": (TEXT_CLASSES,),
    "rnn": (IMAGES, TEXT, TEXT_CLASSES, SERIES),
    "transformer-encoder": (IMAGES, TEXT_CLASSES),
    "gpt": (TEXT,),
}
# A dataset's task, else its spec.extra["kind"] -> its kind here; a spec saying neither holds images.
TASK_KINDS = {"language-model": TEXT, "forecast": SERIES, "regression": TABLE}
KIND_OF = {"text": TEXT, "poems": TEXT, "text-classification": TEXT_CLASSES, "series": SERIES, "table": TABLE}
KIND_NAMES = {IMAGES: "images", TEXT: "a text corpus", TEXT_CLASSES: "labelled texts", SERIES: "a time series",
              TABLE: "a table"}  # fmt: skip
