"""One registration shape for every hook: ``register(obj)``, the object carrying its name."""
from __future__ import annotations

import pytest

import ganzoo
from ganzoo import plugins
from ganzoo.objective import AdversarialLoss


class Doubled(AdversarialLoss):
    """A test objective registered as register(cls)."""

    name = "test-doubled"

    def d_loss(self, real_scores, fake_scores):
        return 2 * (fake_scores.mean() - real_scores.mean())

    def g_loss(self, fake_scores):
        return -2 * fake_scores.mean()


class Legacy(Doubled):
    """A test objective registered the older way, register(name, cls)."""


class Nameless(ganzoo.Objective):
    """No name: refused."""


class NewShape:
    @staticmethod
    @ganzoo.hookimpl
    def register_objectives(register):
        register(Doubled)
        register("test-legacy", Legacy)


class Bad:
    @staticmethod
    @ganzoo.hookimpl
    def register_objectives(register):
        register(Nameless)


@pytest.fixture
def registered():
    names = []

    def add(plugin, name):
        plugins.register_plugin(plugin, name=name)
        names.append(name)
        return plugins.get_registry()

    yield add
    for name in names:
        plugins.unregister_plugin(name)


def test_objectives_register_by_their_name_and_the_old_shape_still_works(registered):
    reg = registered(NewShape, "test-register-shape")
    assert reg.objective("test-doubled") is Doubled and reg.objective("test-legacy") is Legacy
    info = next(p for p in reg.plugins if p.name == "test-register-shape")
    assert info.registered["objective"] == ["test-doubled", "test-legacy"]
    assert reg.objective("nonsaturating").name == "nonsaturating"  # the built-ins register the same way


def test_an_objective_without_a_name_is_a_plugin_failure(registered):
    reg = registered(Bad, "test-register-bad")
    failure = next(f for f in reg.failures if f.name == "test-register-bad")
    assert "register_objectives" in failure.error and "Nameless has no name" in failure.error
    assert "nonsaturating" in reg.objectives  # the others still load
