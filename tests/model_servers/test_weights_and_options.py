"""Every VLM server: without its weights it stays NOT_SERVING and says what is missing and how to
get it; options are checked at construction; the card carries the licence and variant."""
from __future__ import annotations

import pytest

import ctbench.preprocess.presets  # noqa: F401  (registers the presets)
from ctbench.errors import ModelNotReady
from ctbench.model_servers.registry import get_model_class
from ctbench.model_servers.vlm_common.catalog import CATALOG
from ctbench.model_servers.vlm_common.loopback import describe, health, serving
from ctbench.model_servers.vlm_common.weights import missing_files
from ctbench.preprocess.input_spec import PRESETS, get_spec

VLMS = ["med3dvlm", "m3d-lamed", "radfm", "ct-chat", "medgemma", "merlin", "vila-m3", "lingshu"]


def test_every_vlm_has_a_catalogue_entry_with_a_licence():
    assert sorted(CATALOG) == sorted(VLMS)
    assert all(entry.license and entry.required for entry in CATALOG.values())


@pytest.mark.parametrize("name", VLMS)
def test_load_without_weights_names_the_missing_files_and_the_fetch_command(name, tmp_path):
    model = get_model_class(name)(weights=str(tmp_path))
    with pytest.raises(ModelNotReady) as info:
        model.load()
    message = str(info.value)
    assert f"bench models fetch {name}" in message
    assert str(tmp_path) in message
    assert "missing" in message
    first = CATALOG[name].required[0]
    assert (first if isinstance(first, str) else first[0]) in message
    assert CATALOG[name].license in message


@pytest.mark.parametrize("name", VLMS)
def test_missing_weights_directory_is_reported(name, tmp_path):
    with pytest.raises(ModelNotReady, match="does not exist"):
        get_model_class(name)(weights=str(tmp_path / "nowhere")).load()


def test_server_without_weights_stays_not_serving_and_answers_unavailable(tmp_path, phantom):
    from ctbench.model_servers.vlm_common.loopback import ask

    model = get_model_class("medgemma")(weights=str(tmp_path))
    with serving(model, phantom["root"], wait_loaded=False) as (address, server):
        import time

        deadline = time.monotonic() + 10
        while server.core.load_error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert health(address) == "NOT_SERVING"
        card = describe(address)
        assert card.license == CATALOG["medgemma"].license
        answers = ask(address, phantom["relative"], phantom["volume_id"], phantom["questions"][:1])
    (answer,) = answers.values()
    assert answer.status.error_type == "ModelNotReady"
    assert "bench models fetch medgemma" in answer.status.message


def test_alternatives_and_globs_in_required_files(tmp_path):
    (tmp_path / "a.pt").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    required = ("config.json", ("model.safetensors", "model.safetensors.index.json"), "*.pt", "*.bin")
    assert missing_files(tmp_path, required) == ["model.safetensors or model.safetensors.index.json", "*.bin"]


@pytest.mark.parametrize("name", VLMS)
def test_unknown_option_and_bad_variant_fail_at_construction(name):
    cls = get_model_class(name)
    with pytest.raises(ValueError, match="unknown option"):
        cls(colour="red")
    with pytest.raises(ValueError, match="variant must be one of"):
        cls(variant="best")


@pytest.mark.parametrize("name", VLMS)
@pytest.mark.parametrize("variant", ["authors", "published"])
def test_card_names_variant_licence_and_deterministic_decoding(name, variant):
    model = get_model_class(name)(variant=variant)
    card = model.card()
    assert card.license == CATALOG[name].license
    assert card.input.variant == variant
    assert card.generation["variant"] == variant
    assert card.generation["seed"] == "0"
    assert f"+{variant}+gen-" in card.version
    sampled = card.generation.get("do_sample") == "True"
    assert not sampled or "seed" in card.generation  # sampling is seeded


PRESET_VARIANTS = [(name, variant) for name in VLMS for variant in sorted(PRESETS.get(name).variants)]


@pytest.mark.parametrize("name, variant", PRESET_VARIANTS)
def test_every_preset_variant_is_a_server_variant(name, variant):
    """No preset is unreachable: each one a server registers can be asked for with --option variant=."""
    model = get_model_class(name)(variant=variant)
    card = model.card()
    assert card.input.variant == variant and f"+{variant}+gen-" in card.version
    assert card.input.to_dict() == get_spec(name, variant).to_dict() or name in ("medgemma", "lingshu")  # slice servers add overrides
    expected = get_model_class(name)(variant="published" if variant.startswith("published") else "authors")
    assert model.settings == expected.settings  # a published-* input comes with the published harness's decoding


def test_version_changes_with_decoding_settings():
    cls = get_model_class("medgemma")
    assert cls().version != cls(max_new_tokens="7").version
    assert cls().version == cls().version


def test_bench_serve_reports_a_bad_option_as_an_error_not_a_traceback():
    from click.testing import CliRunner

    from ctbench.cli.serve import serve

    result = CliRunner().invoke(serve, ["medgemma", "--port", "0", "--option", "reuse=maybe"])
    assert result.exit_code == 1
    assert "Error: option reuse='maybe': expected true or false" in result.output


def test_prefixed_checkpoint_keeps_the_server_not_serving_and_names_the_keys(tmp_path, phantom):
    """transformers only warns when no checkpoint key matches and serves a random model; the
    server refuses instead, and says which parameters stayed at random init and why."""
    import time

    from bad_checkpoints import prefixed_lingshu

    from ctbench.model_servers.vlm_common.loopback import TINY_OPTIONS, ask

    weights = prefixed_lingshu(tmp_path / "lingshu")
    model = get_model_class("lingshu")(**{**TINY_OPTIONS, "weights": str(weights)})
    with serving(model, phantom["root"], wait_loaded=False) as (address, server):
        deadline = time.monotonic() + 60
        while server.core.load_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert health(address) == "NOT_SERVING"
        (answer,) = ask(address, phantom["relative"], phantom["volume_id"], phantom["questions"][:1]).values()
    assert answer.status.error_type == "ModelNotReady"
    assert "random init" in answer.status.message
    assert "module.lm_head.weight" in answer.status.message and str(weights) in answer.status.message
