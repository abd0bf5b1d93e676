"""``facesearch models``: what is configured, what the home holds, what is installed."""

from __future__ import annotations

import argparse
from typing import Any

from facesearch.cli import render
from facesearch.domain import Requester
from facesearch.engine import FaceSearch

COMMANDS = ("models",)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    sub.add_parser(
        "models",
        parents=[common],
        help="list the configured and installed face models",
        description="Show the configured detector and embedder (the embedder is loaded, so "
        "a bad faces.* setting shows here), the model this home's vectors were made with, "
        "and whether each registered model can run on this machine.",
    )


def text(info: dict[str, Any]) -> str:
    home = info["home_model"]
    if home is None:
        held = "no vectors yet (the configured model will be recorded)"
    elif info["home_accepts"]:
        held = f"{home} (the configured model)"
    else:
        held = (
            f"{home}: ANOTHER model; search and ingest are refused until "
            "`facesearch reindex --re-embed` re-embeds the home"
        )
    lines = [
        f"Configured: detector {info['detector']}, embedder {info['embedder']}",
        f"Model:      {info['model']}",
        f"This home:  {held}",
        f"ONNX Runtime providers: {', '.join(info['onnxruntime_providers'])}",
    ]
    for group in ("detectors", "embedders"):
        lines.append(f"{group.capitalize()}:")
        width = max(len(n) for n in info[group])
        for name, state in sorted(info[group].items()):
            lines.append(f"  {name.ljust(width)}  {state}")
    return "\n".join(lines)


def run(args: argparse.Namespace, engine: FaceSearch, who: Requester) -> int:
    info = engine.models()
    render.emit(args.json, info, text(info))
    return 0
