"""The Chinese edition's catalogues: new English is untranslated, changed English is fuzzy, never silently stale."""

import json
import sys
from pathlib import Path

import pytest
from babel.messages import pofile
from babel.messages.catalog import Catalog

from booktools import i18n

ROOT = Path(__file__).resolve().parents[1]


def write_pot(pot_dir: Path, docname: str, messages: list[str]) -> None:
    catalogue = Catalog()
    for message in messages:
        catalogue.add(message)
    path = pot_dir / f"{docname}.pot"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pofile.write_po(handle, catalogue)


def translate_all(locales: Path, docname: str, table: dict[str, str]) -> None:
    path = locales / i18n.LANGUAGE / "LC_MESSAGES" / f"{docname}.po"
    catalogue = i18n.read_catalogue(path)
    for message in catalogue:
        if message.id in table:
            message.string = table[message.id]
            message.flags.discard("fuzzy")
    i18n.write_catalogue(catalogue, path)


@pytest.fixture
def book(tmp_path):
    root, pot_dir, locales = tmp_path / "root", tmp_path / "pot", tmp_path / "locales"
    (root / "notebooks").mkdir(parents=True)
    nb = {"cells": [{"cell_type": "code", "metadata": {"mystnb": {"image": {"alt": "A line chart of loss"}}},
                     "source": "plot()", "outputs": []}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (root / "notebooks" / "x.ipynb").write_text(json.dumps(nb))
    write_pot(pot_dir, "notebooks/x", ["Attention weighs the values.", "The loss falls with every step."])
    write_pot(pot_dir, "book/api/utils", ["Seeds every generator."])  # the reference is not translated
    return root, pot_dir, locales


def test_update_creates_empty_catalogues_and_the_check_reports_the_share(book):
    root, pot_dir, locales = book
    report = i18n.update(pot_dir, locales, root)
    assert list(report) == ["notebooks/x"]  # book/api stays English
    assert report["notebooks/x"] == {"messages": 3, "new": 3, "fuzzy": 0}  # two paragraphs and one alt text
    ok, text = i18n.check(pot_dir, locales, 0.95, root)
    assert not ok and "0.0% of the prose translated" in text
    translate_all(locales, "notebooks/x", {"Attention weighs the values.": "注意力为值加权。",
                                           "The loss falls with every step.": "损失随每一步下降。",
                                           "A line chart of loss": "损失的折线图"})
    ok, text = i18n.check(pot_dir, locales, 0.95, root)
    assert ok, text
    assert "100.0% of the prose translated" in text


def test_changed_english_becomes_fuzzy_and_fails_the_check_until_reviewed(book):
    root, pot_dir, locales = book
    i18n.update(pot_dir, locales, root)
    translate_all(locales, "notebooks/x", {"Attention weighs the values.": "注意力为值加权。",
                                           "The loss falls with every step.": "损失随每一步下降。",
                                           "A line chart of loss": "损失的折线图"})
    write_pot(pot_dir, "notebooks/x", ["Attention weighs the values.", "The loss falls with almost every step."])
    ok, text = i18n.check(pot_dir, locales, 0.5, root)  # not yet updated: the catalogue is out of step
    assert not ok and "not in the catalogue" in text and "no longer exists" in text
    i18n.update(pot_dir, locales, root)
    catalogue = i18n.read_catalogue(locales / i18n.LANGUAGE / "LC_MESSAGES" / "notebooks/x.po")
    changed = catalogue.get("The loss falls with almost every step.")
    assert changed.fuzzy and changed.string == "损失随每一步下降。"  # kept for the translator, but flagged
    text = (locales / i18n.LANGUAGE / "LC_MESSAGES" / "notebooks/x.po").read_text(encoding="utf-8")
    assert '#| msgid "The loss falls with every step."' in text  # the old English, shown to the translator
    assert catalogue.get("The loss falls with every step.") is None  # the old English is gone
    ok, text = i18n.check(pot_dir, locales, 0.5, root)
    assert not ok and "1 fuzzy" in text
    # a fuzzy translation is never used: the notebook translation skips it
    assert "The loss falls with almost every step." not in i18n.translations(
        locales / i18n.LANGUAGE / "LC_MESSAGES" / "notebooks/x.po")


def test_words_counts_english_prose_only():
    assert i18n.words("A {term}`neural network` has $n$ layers.") == 4  # "A", "has", "layers" and the role
    assert i18n.words("$$x^2$$") == 0


def test_translate_markdown_matches_across_line_breaks_and_longest_first():
    source = "## Attention\n\nAttention weighs\nthe values.\n\n- Attention\n"
    table = {"Attention": "注意力", "Attention weighs the values.": "注意力为值加权。"}
    out, n = i18n.translate_markdown(source, table)
    assert out == "## 注意力\n\n注意力为值加权。\n\n- 注意力\n" and n == 3  # longest first, whole words


def test_translate_markdown_never_rescans_what_it_replaced():
    source = "We use {term}`in-context learning <in-context learning>` here.\n\n| in-context learning |\n"
    table = {"We use {term}`in-context learning <in-context learning>` here.":
             "这里用{term}`上下文学习 <in-context learning>`。", "in-context learning": "上下文学习"}
    out, n = i18n.translate_markdown(source, table)
    assert out == "这里用{term}`上下文学习 <in-context learning>`。\n\n| 上下文学习 |\n" and n == 2
    assert i18n.translate_markdown("kindness", {"kind": "种类"}) == ("kindness", 0)  # whole words only


def test_translate_notebook_changes_prose_and_alt_text_not_code(tmp_path):
    locales = tmp_path / "locales"
    catalogue = i18n._new_catalogue()
    catalogue.add("Run it.", string="运行它。")
    catalogue.add("A line chart", string="一张折线图", context=i18n.ALT_CONTEXT)
    catalogue.add("Unsure.", string="不确定。", flags=["fuzzy"])
    i18n.write_catalogue(catalogue, locales / i18n.LANGUAGE / "LC_MESSAGES" / "notebooks" / "x.po")
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["Run it. Unsure."]},
                    {"cell_type": "code", "metadata": {"mystnb": {"image": {"alt": "A line chart"}}},
                     "source": "print('Run it.')", "outputs": []}]}
    out = i18n.translate_notebook(nb, "notebooks/x", locales)
    assert out["cells"][0]["source"] == "运行它。 Unsure."  # the fuzzy entry is not used
    assert out["cells"][1]["source"] == "print('Run it.')"
    assert out["cells"][1]["metadata"]["mystnb"]["image"]["alt"] == "一张折线图"
    assert nb["cells"][0]["source"] == ["Run it. Unsure."]  # the English notebook is untouched


def test_the_chinese_configuration_differs_only_where_it_must():
    config = i18n.zh_config()
    english = i18n.zh_config.__globals__["ROOT"] / "_config.yml"
    assert english.exists()
    settings = config["sphinx"]["config"]
    assert settings["language"] == "zh_CN" and settings["gettext_compact"] is False
    assert all(Path(path).is_absolute() for path in config["sphinx"]["local_extensions"].values())
    assert config["title"] == i18n.ZH_TITLE


def test_the_language_switch_links_the_same_page_in_the_other_edition():
    sys.path.insert(0, str(ROOT / "_ext"))
    import book_i18n

    assert book_i18n.other_edition("notebooks/10_rlhf", chinese=False) == "../zh/notebooks/10_rlhf.html"
    assert book_i18n.other_edition("notebooks/10_rlhf", chinese=True) == "../../notebooks/10_rlhf.html"
    assert book_i18n.other_edition("index", chinese=False) == "zh/index.html"
    assert book_i18n.other_edition("index", chinese=True) == "../index.html"
    assert 'hreflang="zh-CN"' in book_i18n.switch_html("index", chinese=False)


def test_markup_problems_catch_broken_roles_maths_and_code():
    english = "The {term}`loss <loss function>` of {py:func}`~llmbook.training.train` is $L$; call `train()`."
    good = "{py:func}`~llmbook.training.train` 的{term}`损失 <loss function>`是 $L$；调用 `train()`。"
    assert i18n.markup_problems(english, good) == []
    assert i18n.markup_problems(english, good.replace("<loss function>", "<loss>"))  # the target changed
    assert i18n.markup_problems(english, good.replace("$L$", "L"))
    assert i18n.markup_problems(english, good.replace("`train()`", "train()"))
    assert i18n.markup_problems("See {cite}`a2020,b2021`.", "见 {cite}`a2020`。")


def test_todo_and_apply_round_trip_and_refuse_broken_markup(book):
    root, pot_dir, locales = book
    i18n.update(pot_dir, locales, root)
    table = i18n.todo("notebooks/x", locales)
    assert set(table) == {"Attention weighs the values.", "The loss falls with every step.",
                          "[alt text] A line chart of loss"}
    problems = i18n.apply("notebooks/x", {"Attention weighs the values.": "注意力为值加权。",
                                          "[alt text] A line chart of loss": "损失的折线图",
                                          "The loss falls with every step.": "",  # left for later
                                          "Not in the page.": "不存在。"}, locales)
    assert problems == ["not in notebooks/x: 'Not in the page.'"]
    assert set(i18n.todo("notebooks/x", locales)) == {"The loss falls with every step."}
    bad = i18n.apply("notebooks/x", {"The loss falls with every step.": "损失 $x$ 下降。"}, locales)
    assert bad and "maths" in bad[0]


def test_the_glossary_is_the_term_base():
    terms = i18n.glossary_terms()
    assert terms["neural network"] == "神经网络" and terms["large language model"] == "大语言模型"
    assert len(terms) >= 50
    english = "A {term}`neural network <neural network>` predicts the next {term}`token`."
    assert i18n.terminology_problems(english, "{term}`神经网络 <neural network>`预测下一个{term}`词元 <token>`。",
                                     terms) == []
    assert i18n.terminology_problems(english, "{term}`神经网络 <neural network>`预测下一个{term}`令牌 <token>`。",
                                     terms)


def test_every_translation_in_the_catalogues_follows_the_term_base_and_keeps_its_markup():
    terms = i18n.glossary_terms()
    problems = []
    for path in sorted((ROOT / "locales").rglob("*.po")):
        for message in i18n.read_catalogue(path):
            if message.id and message.string and not message.fuzzy:
                found = i18n.terminology_problems(message.id, message.string, terms)
                found += i18n.markup_problems(message.id, message.string)
                problems += [f"{path.name}: {message.id[:50]!r}: {p}" for p in found]
    assert not problems, "\n".join(problems[:20])


def test_exercise_titles_are_messages_and_are_translated_in_the_source(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "metadata": {},
                     "source": "```{exercise-start} The price of distance\n:label: ex-10-beta\n```\nText."}]}
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    assert i18n.exercise_titles(path) == ["The price of distance"]
    out = i18n.translate_exercise_titles(nb["cells"][0]["source"], {"The price of distance": "距离的代价"})
    assert out.startswith("```{exercise-start} 距离的代价\n:label: ex-10-beta")
    assert i18n.translate_exercise_titles("```{exercise-start} Other\n", {"x": "y"}) == "```{exercise-start} Other\n"


def test_generated_blocks_are_left_out_of_the_catalogue_and_rendered_in_chinese(tmp_path):
    root, pot_dir, locales = tmp_path / "root", tmp_path / "pot", tmp_path / "locales"
    (root / "book").mkdir(parents=True)
    (root / "book" / "guide.md").write_text(
        "# Guide\n\nEvery chapter has a table.\n\n% BEGIN generated: notebook-timings (do not edit)\n"
        "Measured on a\nfast machine.\n\n| # | idle (s) |\n|---|---|\n| 1 | 12.5 |\n"
        "% END generated: notebook-timings\n")
    write_pot(pot_dir, "book/guide", ["Guide", "Every chapter has a table.", "Measured on a fast machine.", "#",
                                      "idle (s)", "12.5"])
    report = i18n.update(pot_dir, locales, root)
    assert report["book/guide"]["messages"] == 2  # the title and the prose; not "chapter" inside "Every chapter"
    catalogue = i18n.read_catalogue(locales / i18n.LANGUAGE / "LC_MESSAGES" / "book/guide.po")
    assert {m.id for m in catalogue if m.id} == {"Guide", "Every chapter has a table."}


def test_the_chinese_timings_block_is_rendered_from_the_stored_results():
    from booktools import performance

    text = performance.chinese_block("notebook-timings")
    assert "| 章 | 空闲（秒） |" in text and "make speed" in text
    with pytest.raises(ValueError, match="no Chinese rendering of block 'performance'"):
        performance.chinese_block("performance")
