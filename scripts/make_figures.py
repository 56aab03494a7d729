"""Draw the static figures in figures/ (run by hand: .venv/bin/python scripts/make_figures.py).

Figures drawn by notebooks live in the notebooks' outputs; this script makes only the figures that book pages use.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from llmbook.plotting import OKABE_ITO, use_book_style  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "figures"
WRITTEN = 11  # chapters 1..WRITTEN exist; later ones are drawn dashed as "planned"

PARTS = [
    ("Part I\nThe big picture", OKABE_ITO["sky_blue"],
     ["1 What is a large model?", "2 History, 1956 to GPT-4", "3 Kinds of large models"]),
    ("Part II\nHow language models work", OKABE_ITO["orange"],
     ["4 Word embeddings", "5 Inside an LLM", "6 A tiny GPT and generation", "7 Kinds of language models"]),
    ("Part III\nScale, adaptation\nand alignment", OKABE_ITO["bluish_green"],
     ["8 Scaling and emergence", "9 Generalisation and fine-tuning", "10 RLHF"]),
    ("Part IV\nLimits and\nthe future", OKABE_ITO["reddish_purple"], ["11 Limits and the future"]),
]


def book_map(path: Path) -> None:
    use_book_style()
    fig, ax = plt.subplots(figsize=(10, 4.0))
    ax.set_axis_off()
    ax.set_xlim(0, 4)
    ax.set_ylim(0.35, 5.4)
    for column, (title, colour, chapters) in enumerate(PARTS):
        ax.text(column + 0.5, 5.0, title, ha="center", va="center", fontsize=10, fontweight="bold", wrap=True)
        for row, chapter in enumerate(chapters):
            y = 4.2 - row * 1.05
            planned = int(chapter.split()[0]) > WRITTEN
            ax.add_patch(FancyBboxPatch((column + 0.06, y - 0.38), 0.88, 0.76, boxstyle="round,pad=0.02",
                                        facecolor=colour, edgecolor="black", alpha=0.35 if planned else 0.85,
                                        linestyle="--" if planned else "-"))
            label = chapter + ("\n(planned)" if planned else "")
            ax.text(column + 0.5, y, label, ha="center", va="center", fontsize=9, wrap=True)
        if column < len(PARTS) - 1:
            ax.annotate("", xy=(column + 1.04, 4.2), xytext=(column + 0.96, 4.2),
                        arrowprops={"arrowstyle": "->", "lw": 1.5})
    ax.set_title("How the book is organised: read the parts from left to right", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


if __name__ == "__main__":
    FIGURES.mkdir(exist_ok=True)
    book_map(FIGURES / "book_map.png")
    print("wrote", FIGURES / "book_map.png")
