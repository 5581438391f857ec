"""Built-in dataset kinds, registered through the same hook as a third-party plugin's.

The loading code lives in :mod:`ganzoo.data`; this module only registers it.
"""
from .. import data
from ..hookspecs import hookimpl
from ..spec import DatasetSpec


@hookimpl
def register_datasets(register):
    register(DatasetSpec(
        "fashion-mnist", build=data.load_fashion_mnist,
        description="Fashion-MNIST from its four IDX .gz files; 10 classes, 28 px gray; "
                    "split train (60k), test (10k) or all",
    ))
    register(DatasetSpec(
        "folder", build=data.load_folder,
        description="a folder of images (.jpg .jpeg .png .webp .bmp); class = sub-folder, flat = unlabelled, "
                    "split folders (train/ test/ .../<class>/) picked with split",
    ))
    register(DatasetSpec(
        "utkface", build=data.load_utkface,
        description="UTKFace faces (age_gender_race_date.jpg.chip.jpg); unconditional, "
                    "or label gender, race or age_group",
    ))
