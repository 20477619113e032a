"""``fal-assets prices`` and ``estimate`` on endpoints without a confirmed price."""

import json

from typer.testing import CliRunner

from fal_assets.cli import app
from fal_assets.pricing import load_prices

runner = CliRunner()


def test_prices_prints_every_entry_with_its_source_and_date():
    result = runner.invoke(app, ["prices", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["endpoint"]: row for row in json.loads(result.output)}
    table = load_prices()
    assert set(rows) == set(table.prices) | set(table.unpriced)
    assert rows["fal-ai/flux-2-trainer"]["price"] == "$0.0064/step"
    assert rows["fal-ai/flux-2-max"]["price"] == "$0.07 first MP + $0.03/extra MP (output)"
    assert "6.95" in rows["fal-ai/flux-2-trainer/edit"]["price"]
    assert rows["fal-ai/birefnet/v2"]["price"].startswith("unpriced")
    assert all(row["source"] and row["checked"] for row in rows.values())
    table_text = runner.invoke(app, ["prices"]).output.splitlines()
    assert table_text[0].split()[:3] == ["endpoint", "price", "checked"] and len(table_text) == len(rows) + 1


def test_estimate_refuses_an_unpriced_endpoint_in_one_line():
    result = runner.invoke(app, ["estimate", "fal-ai/flux-2-pro/edit", "--arg", "prompt=x", "--arg", 'image_urls=["https://a/b.png"]'])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "no price is known for fal-ai/flux-2-pro/edit" in lines[0]
