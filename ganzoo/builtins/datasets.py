"""Built-in dataset kinds, registered through the same hook as a third-party plugin's.

The loading code lives in :mod:`ganzoo.data`; this module only registers it.
"""
from ..hookspecs import hookimpl
from ..spec import DatasetSpec


def _fashion_mnist(path, **kwargs):
    from ..data import load_fashion_mnist

    return load_fashion_mnist(path, **kwargs)


def _folder(path, **kwargs):
    from ..data import load_folder

    return load_folder(path, **kwargs)


def _utkface(path, **kwargs):
    from ..data import load_utkface

    return load_utkface(path, **kwargs)


@hookimpl
def register_datasets(register):
    register(DatasetSpec(
        "fashion-mnist", build=_fashion_mnist,
        description="Fashion-MNIST from its four IDX .gz files; 10 classes, 28 px gray; "
                    "split train (60k), test (10k) or all",
    ))
    register(DatasetSpec(
        "folder", build=_folder,
        description="a folder of images (.jpg .jpeg .png .webp .bmp); class = sub-folder, flat = unlabelled, "
                    "split folders (train/ test/ .../<class>/) picked with split",
    ))
    register(DatasetSpec(
        "utkface", build=_utkface,
        description="UTKFace faces (age_gender_race_date.jpg.chip.jpg); unconditional, "
                    "or label gender, race or age_group",
    ))
