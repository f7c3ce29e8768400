"""Heads and bottlenecks: the registry, old configs, the generic metrics, end-to-end training being CPC."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from conftest import preset_step, tiny_config
from vgim.config import ConfigError, config_from_dict, load_config
from vgim.data.batches import Batch
from vgim.model import Stack
from vgim.model.bottleneck import BOTTLENECKS
from vgim.objective import HEADS, Objective
from vgim.train.loop import forward_losses
from vgim.train.metrics import MetricsWriter


def test_the_registries_find_every_part_and_refuse_unknown_names_and_options() -> None:
    assert {"identity", "gaussian", "vq"} <= set(BOTTLENECKS.names())
    assert {"infonce", "reconstruction", "apc"} <= set(HEADS.names())
    with pytest.raises(ConfigError, match="model.bottleneck: unknown name 'vae'"):
        load_config("gim-small", ["model.bottleneck=vae"])
    with pytest.raises(ConfigError, match="objective.head: unknown name 'mpc'"):
        load_config("gim-small", ["objective.head=mpc"])
    with pytest.raises(ConfigError, match=r"model.bottleneck_options: unknown key\(s\) \['size'\]"):
        load_config("gim-small", ["model.bottleneck=gaussian", "model.bottleneck_options={size=4}"])
    with pytest.raises(ConfigError, match="objective.options.hidden: expected an integer"):
        load_config("gim-small", ["objective.head=reconstruction", "objective.options={hidden=0.5}"])


def test_old_configs_and_weights_with_variational_still_load() -> None:
    cfg = tiny_config(variational=True)
    data = cfg.to_dict()
    data["model"].pop("bottleneck")
    data["model"].pop("bottleneck_options")
    data["model"]["variational"] = True
    assert config_from_dict(data).model.bottleneck == "gaussian"
    data["model"]["variational"] = False
    assert config_from_dict(data).model.bottleneck == "identity"
    with pytest.raises(ConfigError, match="contradicts model.bottleneck"):
        config_from_dict(data | {"model": data["model"] | {"variational": True, "bottleneck": "other"}})
    # weights saved when the Gaussian head was the module's own mu / logvar
    stack = Stack(cfg.model)
    old = {k.replace("bottleneck.", ""): v for k, v in stack.state_dict().items()}
    assert "blocks.0.mu.weight" in old
    fresh = Stack(cfg.model)
    fresh.load_state_dict(old, strict=True)
    torch.testing.assert_close(fresh.block(0).bottleneck.mu.weight, stack.block(0).bottleneck.mu.weight)


def test_metrics_grow_columns_and_resume_drops_later_rows(tmp_path: Path) -> None:
    w = MetricsWriter(tmp_path)
    w.log(5, 0.1, {0: {"loss": 1.0, "a": 2.0}})
    w.log(10, 0.1, {0: {"loss": 0.5, "a": 1.0, "b": 3.0}, 1: {"loss": 0.7}})
    w.close()
    with (tmp_path / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["b"] for r in rows] == ["", "3", ""]
    assert rows[0]["a"] == "2"
    with (tmp_path / "metrics.csv").open("a") as f:
        f.write("garbage,row\n")
    w = MetricsWriter(tmp_path, resume_step=5)
    w.close()
    with (tmp_path / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["step"], r["module"]) for r in rows] == [("5", "0")]
    assert not (tmp_path / "metrics.csv.tmp").exists()


def _layers(stack: Stack) -> list[torch.nn.Module]:
    """Every conv layer of the stack in order, then the GRU."""
    layers = [layer for m in range(stack.n_modules) for layer in stack.block(m).encoder]
    ar = stack.block(stack.n_modules - 1).ar
    assert ar is not None
    return layers + [ar]


@pytest.mark.parametrize("modules", [[5, 1], [3, 3], [2, 2, 2]])
def test_end_to_end_on_any_split_is_cpc_on_that_network(modules: list[int]) -> None:
    """The loss and every gradient of end-to-end training of a split stack equal single-module CPC's."""
    split_cfg = tiny_config(modules=modules)
    whole_cfg = tiny_config(modules=[6])
    torch.manual_seed(0)
    split, whole = Stack(split_cfg.model), Stack(whole_cfg.model)
    for a, b in zip(_layers(split), _layers(whole), strict=True):
        b.load_state_dict(a.state_dict())
    obj_split, obj_whole = Objective(split, split_cfg.objective), Objective(whole, whole_cfg.objective)
    obj_whole.heads[0].load_state_dict(obj_split.heads[-1].state_dict())
    batch = Batch(0.1 * torch.randn(3, 1, 6400))
    torch.manual_seed(1)
    loss_split, _, _ = forward_losses(split, obj_split, batch, "end_to_end")
    torch.manual_seed(1)
    loss_whole, _, _ = forward_losses(whole, obj_whole, batch, "end_to_end")
    torch.testing.assert_close(loss_split, loss_whole)
    loss_split.backward()
    loss_whole.backward()
    grads_split = [p.grad for layer in _layers(split) for p in layer.parameters()]
    grads_whole = [p.grad for layer in _layers(whole) for p in layer.parameters()]
    assert all(g is not None for g in grads_split)
    for a, b in zip(grads_split, grads_whole, strict=True):
        torch.testing.assert_close(a, b)
    for a, b in zip(obj_split.heads[-1].parameters(), obj_whole.heads[0].parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad)


def test_presets_of_the_new_parts_build() -> None:
    for name in ["vae-small", "vae-thesis-improved"]:
        loss, losses = preset_step(name)
        assert torch.isfinite(loss), name
        assert losses


def test_a_failed_metrics_rewrite_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resuming rewrites metrics.csv through a temporary file: a kill (here: a failing replace) in that window
    leaves the old rows, never an empty file."""
    import os

    import vgim.train.metrics as metrics_module

    w = MetricsWriter(tmp_path)
    w.log(5, 0.1, {0: {"loss": 1.0}})
    w.log(10, 0.1, {0: {"loss": 0.5}})
    w.close()
    before = (tmp_path / "metrics.csv").read_text()

    def killed(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(metrics_module.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        MetricsWriter(tmp_path, resume_step=5)
    monkeypatch.setattr(metrics_module.os, "replace", os.replace)
    assert (tmp_path / "metrics.csv").read_text() == before
