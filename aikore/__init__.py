"""AiKore: run AI WebUIs on a GPU box from one browser dashboard."""

__version__ = "0.1.0"
