"""The generic registry: decorated and lazy `"module:attr"` entries, one name each, unknown names
listing what exists; and the model-server table, the one place a model's name is bound."""
from __future__ import annotations

import subprocess
import sys

import pytest

from ctbench.errors import UnknownName
from ctbench.registry import Registry, import_target


def test_lazy_entry_is_imported_on_first_get_only(tmp_path, monkeypatch):
    (tmp_path / "lazy_target_mod.py").write_text("LOADS = []\nLOADS.append(1)\nclass Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("thing", {"thing": "lazy_target_mod:Thing"})
    assert "thing" in registry and registry.names() == ["thing"]
    assert "lazy_target_mod" not in sys.modules
    cls = registry.get("thing")
    assert cls.__name__ == "Thing" and sys.modules["lazy_target_mod"].LOADS == [1]
    assert registry.get("thing") is cls and registry.name_of(cls) == "thing"
    monkeypatch.delitem(sys.modules, "lazy_target_mod")


def test_a_name_is_bound_once():
    registry = Registry("thing", {"a": "ctbench.registry:Registry"})
    with pytest.raises(ValueError, match="thing 'a' is registered twice"):
        registry.register("a")(object)
    with pytest.raises(ValueError, match="thing 'a' is registered twice"):
        registry.add_lazy("a", "ctbench.errors:UnknownName")
    with pytest.raises(ValueError, match="not of the form 'package.module:Name'"):
        registry.add_lazy("b", "ctbench.errors.UnknownName")


def test_unknown_names_and_targets_say_what_is_wrong():
    registry = Registry("thing", {"gone": "ctbench.registry:NoSuchThing"})
    with pytest.raises(UnknownName, match=r"Unknown thing 'nope'. Available: gone"):
        registry.get("nope")
    with pytest.raises(UnknownName, match=r"module 'ctbench.registry' has no 'NoSuchThing'"):
        registry.get("gone")
    with pytest.raises(UnknownName, match="not of the form"):
        import_target("ctbench.registry")
    with pytest.raises(ModuleNotFoundError):
        import_target("ctbench.no_such_module:X")


def test_every_model_name_is_written_once_and_read_back_by_its_class():
    from ctbench.model_servers.registry import MODEL_MODULES, MODELS, get_model_class

    assert MODELS.names() == sorted(MODEL_MODULES)
    for name, target in MODEL_MODULES.items():
        cls = get_model_class(name)
        assert f"{cls.__module__}:{cls.__qualname__}" == target
        assert "name" not in vars(cls), f"{target} sets its own name; MODEL_MODULES binds it"
        assert cls.name == name


def test_a_model_used_outside_the_registry_keeps_its_name():
    from ctbench.model_servers.baselines.chance import Chance
    from ctbench.model_servers.sdk import Model

    class Seeded(Chance):
        pass

    class OutOfTree(Model):
        name = "mine"

    assert Chance().name == "chance" and Seeded.name == "chance"
    assert OutOfTree().name == "mine" and Model.name == ""


def test_out_of_tree_servers_load_by_module_and_class():
    from ctbench.model_servers.registry import get_model_class

    assert get_model_class("ctbench.model_servers.baselines.blind:Blind").name == "blind"
    with pytest.raises(UnknownName, match="is not a ctbench Model subclass"):
        get_model_class("ctbench.registry:Registry")
    with pytest.raises(UnknownName, match=r"Unknown model server 'nope'. Available: blind, chance"):
        get_model_class("nope")


def test_serving_chance_imports_no_torch():
    code = ("import sys; from ctbench.model_servers.registry import get_model_class; "
            "get_model_class('chance')(); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
