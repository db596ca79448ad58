"""``python -m toppo.train --help`` lists every TrainConfig field with its default and its help,
the docstring written under the field (toppo.specs.config.field_help)."""

from __future__ import annotations

from dataclasses import fields

import pytest

from toppo.specs.config import TrainConfig, cli_value, field_help
from toppo.train import main


def test_every_field_has_a_help_line():
    helps = field_help()
    assert list(helps) == [f.name for f in fields(TrainConfig)]
    assert [key for key, text in helps.items() if not text] == []
    assert helps["ent_coef"] == "weight of the policy's entropy bonus in the actor loss"


@pytest.mark.parametrize("columns", ["80", "200"])
def test_help_lists_every_field_with_its_default_and_its_help(capsys, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    missing = [key for key, value in TrainConfig().to_dict().items()
               if f" {key}={cli_value(value)} {field_help()[key]}" not in text]
    assert missing == []
    assert " hidden_sizes=400,400,400 " in text and " anneal_lr=false " in text
