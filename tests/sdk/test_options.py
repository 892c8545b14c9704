"""``ClientConfig``: every option documented, and ``spool_first`` only with somewhere to spool."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

import rollwise

SDK_DOC = (Path(__file__).resolve().parents[2] / "docs" / "sdk.md").read_text()


@pytest.mark.parametrize(
    "option",
    [f.name for f in attrs.fields(rollwise.ClientConfig) if f.name not in ("url", "sdk_key")],
)
def test_every_option_is_in_the_options_table(option: str) -> None:
    rows = [line for line in SDK_DOC.splitlines() if line.startswith("| `")]
    assert any(f"`{option}`" in row.split(" | ")[0] for row in rows)


def test_spool_first_needs_a_cache_dir() -> None:
    with pytest.raises(rollwise.ConfigurationError, match="spool_first: needs a cache_dir"):
        rollwise.ClientConfig(
            url="http://127.0.0.1:9", sdk_key="k", spool_first=True, cache_dir=None
        )
    with pytest.raises(rollwise.ConfigurationError, match="spool_first"):
        rollwise.ClientConfig(url="http://127.0.0.1:9", sdk_key="k", spool_first="yes")
    config = rollwise.ClientConfig.from_env(
        {
            "ROLLWISE_URL": "http://127.0.0.1:9",
            "ROLLWISE_SDK_KEY": "k",
            "ROLLWISE_SPOOL_FIRST": "on",
        }
    )
    assert config.spool_first is True
