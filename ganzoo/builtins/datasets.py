"""Built-in dataset kinds (placeholder until ganzoo/data.py lands)."""
from ..hookspecs import hookimpl


@hookimpl
def register_datasets(register):
    pass
