"""The hooks a ganzoo plugin implements.

Each hook takes a ``register`` callback; a plugin calls it once per thing it
provides, with one object that carries its name: ``register(obj)``. Built-in objectives and datasets are registered through these same
hooks, exactly like a third-party plugin's.

    import ganzoo

    @ganzoo.hookimpl
    def register_architectures(register):
        register(ganzoo.Architecture(name="tiny", ...))
"""
import pluggy

hookspec = pluggy.HookspecMarker("ganzoo")
hookimpl = pluggy.HookimplMarker("ganzoo")


def registers(*things):
    """A hook implementation that registers ``things``: one line for a plugin module's hook.

        register_architectures = ganzoo.registers(ARCH)
        register_objectives = ganzoo.registers(BiGANObjective)

    is the same as writing ``@ganzoo.hookimpl def register_architectures(register):
    register(ARCH)`` (every hook takes ``register(obj)``; the attribute's name says which hook).
    """

    @hookimpl
    def register_all(register):
        for thing in things:
            register(thing)

    return register_all


@hookspec
def register_architectures(register):
    """Register architectures: call ``register(ganzoo.Architecture(...))`` for each."""


@hookspec
def register_objectives(register):
    """Register objectives: call ``register(ObjectiveClass)`` for each.

    ``ObjectiveClass`` subclasses :class:`ganzoo.Objective` (usually its template
    :class:`ganzoo.objective.AdversarialLoss`) and names itself in the class attribute
    ``name``; its constructor takes the objective's hyper-parameters as keyword
    arguments. (``register(name, ObjectiveClass)``, the older shape, is still accepted.)
    """


@hookspec
def register_datasets(register):
    """Register dataset kinds: call ``register(ganzoo.DatasetSpec(name, build))``.

    The kind is then usable on the command line as ``--data NAME:PATH``.
    """


@hookspec
def register_commands(register):
    """Add sub-commands to ``ganzoo`` (as simonw/llm's ``register_commands``): call
    ``p = register(NAME, help=...)`` for each; it takes argparse's ``add_parser`` arguments and
    returns the command's parser. ``p.add_argument(...)`` adds its options and
    ``p.set_defaults(func=run)`` names the function that runs it, ``run(args) -> int`` (the exit
    status; raise :class:`ganzoo.GanzooError` for a one-line error). ``ganzoo --help`` lists the
    built-in commands only: the plugins are loaded when the command word is not a built-in one.
    """
