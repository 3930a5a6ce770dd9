"""The deterministic engine, as a small composition (see ``engine/core.py``)."""

from engine.config import EngineConfig, EngineStats
from engine.core import Engine
from engine.outputs import Output, Sink

__all__ = ["Engine", "EngineConfig", "EngineStats", "Output", "Sink"]
