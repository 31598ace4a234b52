import json

import pytest
from click.testing import CliRunner

from karabakh_qa.cli import main

from .conftest import write


@pytest.fixture
def run(seed_settings, monkeypatch):
    monkeypatch.setenv("KARABAKH_QA_ARTICLES", str(seed_settings.articles_dir))
    monkeypatch.setenv("KARABAKH_QA_INDEX", str(seed_settings.index_dir))
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(main, list(args), input=input)

    return invoke


def args(*a):
    """The command over the hash embedder; an index's passages embedded whole, as the
    other tests' (tests/conftest.py: make_settings)."""
    whole = ["--passage-vectors", "model"] if a[:1] == ("index",) else []
    return [*a, "--model", "hash-bow-64", *whole]


@pytest.fixture(autouse=True)
def priorities(monkeypatch):
    """What `index` asks of the scheduler, recorded instead of lowering pytest's own
    priority (CliRunner runs the command in this process)."""
    import os

    calls = []
    monkeypatch.setattr(os, "sched_setscheduler", lambda *a: calls.append(("sched", a[1])))
    monkeypatch.setattr(os, "nice", lambda n: calls.append(("nice", n)) or 0)
    return calls


@pytest.mark.parametrize(
    ("priority", "refuse_idle", "expected"),
    [
        ("idle", False, [("sched", "SCHED_IDLE")]),
        ("idle", True, [("nice", 0), ("nice", 19)]),  # no SCHED_IDLE here: niceness 19
        ("low", False, [("nice", 0), ("nice", 19)]),
        ("normal", False, []),
    ],
)
def test_index_yields_the_cores_as_asked(
    run, priorities, monkeypatch, priority, refuse_idle, expected
):
    import os

    def sched(pid, policy, param):
        if refuse_idle:
            raise OSError("not permitted")
        priorities.append(("sched", "SCHED_IDLE" if policy == os.SCHED_IDLE else policy))

    monkeypatch.setattr(os, "sched_setscheduler", sched)
    assert run(*args("index", "--priority", priority)).exit_code == 0
    assert priorities == expected


def test_index_then_ask_json(run):
    result = run(*args("index"))
    assert result.exit_code == 0, result.output
    assert "generation 1: 5 articles, 86 passages" in result.output
    assert "added 5, changed 0, removed 0, unchanged 0; embedded 86 passages" in result.output
    result = run(*args("ask", "How many houses have been destroyed?", "--json", "-k", "2"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data) == [
        "ok",
        "question",
        "answer_found",
        "answer_type",
        "missing_terms",
        "took_ms",
        "index",
        "total",
        "offset",
        "k",
        "sort",
        "hidden_undated",
        "results",
        "figures",
    ]
    assert data["ok"] is True and len(data["results"]) == 2
    assert "1,165 houses" in data["results"][0]["text"]


def test_ask_human_output_and_stdin_mode(run):
    run(*args("index"))
    result = run(*args("ask", "houses destroyed", "-k", "1"))
    assert result.exit_code == 0
    assert "003_10ac5b029c183a1d.txt, 2020-10-11, paragraph 3" in result.output
    assert "also in 000_f1506f499b213b55.txt paragraph 10, date unknown" in result.output
    assert "      why (0-1): words " in result.output and "(score" not in result.output
    assert "also in 001_8494f7265b4a0e6d.txt paragraph 12, 2020-10-11, inferred from the text" in (
        result.output
    )
    result = run(
        *args("ask", "-", "--json", "-k", "1"),
        input=b"houses destroyed\n\nSu-25 jet\n" + b"x" * 1001 + b"\nCaf\xe9 talks\nceasefire",
    )
    assert result.exit_code == 0 and "Traceback" not in result.output
    lines = [json.loads(line) for line in result.output.splitlines()]  # one per input line
    assert [(d["ok"], d.get("status")) for d in lines] == [
        (True, None),
        (False, 400),
        (True, None),
        (False, 400),
        (False, 400),
        (True, None),
    ]
    assert "question is required" in lines[1]["error"] and "at most 1000" in lines[3]["error"]
    assert lines[4] == {
        "ok": False,
        "error": "line 5 is not UTF-8 (invalid byte at offset 3)",
        "status": 400,
        "question": None,
    }


def test_ask_human_output_says_what_the_page_says(run):
    """The CLI's text carries the page's relations: differing figures with their
    files and offsets, the answer span, the first report, other versions, and what
    the archive never mentions."""
    run(*args("index"))
    out = run(
        *args("ask", "How many people were killed in the missile attack on Ganja?", "-k", "1")
    )
    assert out.exit_code == 0, out.output
    assert out.output.startswith(
        "Figures differ across sources: killed (each as reported)\n"
        "  9: 003_10ac5b029c183a1d.txt paragraph 2, 2020-10-11, chars 374–378\n"
        "  13: 002_90d5f99ab22388b6.txt paragraph 19, date unknown, chars 3514–3516\n"
        "  5: 004_669fca5e7478b4f6.txt paragraph 2, date unknown, chars 401–405\n\n[1] "
    )
    assert "\n      answer: “nine people” (number, chars 374–385)\n" in out.output
    assert (
        "\n    Reported in 3 articles; first 2020-10-11 (date line) in 003_10ac5b029c183a1d.txt\n"
        in out.output
    )
    question = (
        "Armenian armed forces attacking civilian areas in Aghdara, Aghdam, Fuzuli and Jabrayil"
    )
    out = run(*args("ask", question, "-k", "1"))
    assert "\n    — 001_8494f7265b4a0e6d.txt, 2020-10-11, inferred from the text" in out.output
    assert (
        "\n    another version: 000_f1506f499b213b55.txt (date unknown): "
        "0 sentences changed, 0 added, 11 removed\n" in out.output
    )
    out = run(*args("ask", "What did the iPhone 15 cost?", "-k", "1"))
    assert out.output.startswith(
        "No confident answer in the archive; the nearest passages are:\n"
        "The archive never mentions: iPhone, 15.\n\n[1] "
    )


def test_ask_json_errors_are_json(run):
    run(*args("index"))
    result = run(*args("ask", "houses", "--json", "-k", "0"))
    assert result.exit_code == 1
    assert json.loads(result.output) == {
        "ok": False,
        "error": "k must be a whole number from 1 to 50, got 0",
        "status": 400,
    }


@pytest.mark.parametrize(
    "argv,code,message",
    [
        (("ask", "houses"), 1, "error: no index in"),
        (("ask",), 2, "Missing argument"),
        (("index", "--bogus"), 2, "No such option"),
        (("index", "--backend", "tensorrt"), 2, "'tensorrt' is not one of 'torch', 'onnx'"),
        (("index", "--ray-actors", "0"), 2, "0 is not in the range 1<=x<=4096"),
        (("index", "--ray=127.0.0.1:1"), 1, "error: no Ray cluster answers at 127.0.0.1:1"),
        (("index", "--store", "elastic"), 2, "'elastic' is not one of 'embedded', 'milvus'"),
        (("index", "--store", "milvus"), 1, "error: the Milvus store needs a URI: --milvus-uri"),
        (
            ("index", "--store", "milvus", "--milvus-uri", "http://127.0.0.1:9"),
            1,
            "error: cannot reach the Milvus store at http://127.0.0.1:9",
        ),
        (("frobnicate",), 2, "No such command"),
    ],
)
def test_exit_codes_without_index(run, argv, code, message):
    result = run(*args(*argv)) if argv[0] != "frobnicate" else run(*argv)
    assert result.exit_code == code
    assert message in result.output
    assert "Traceback" not in result.output


def test_user_errors_exit_1_in_one_line(run, seed_settings):
    run(*args("index"))
    result = run(*args("ask", "houses", "-k", "99"))
    assert result.exit_code == 1
    assert result.output.strip() == "error: k must be a whole number from 1 to 50, got 99"
    result = run(*args("ask", "houses", "--since", "2020-02-30"))
    assert result.exit_code == 1 and "since must be a date" in result.output
    result = run(*args("index", "--articles", str(seed_settings.articles_dir / "nope")))
    assert result.exit_code == 1 and "does not exist" in result.output


def test_stale_index_is_an_error_unless_allowed(run, seed_settings):
    run(*args("index"))
    write(seed_settings.articles_dir, "new.txt", "Fresh paragraph about talks.\n")
    result = run(*args("ask", "talks", "-k", "1"))
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: index is stale: 1 article file changed since it was built (e.g. new.txt); "
        f"run `karabakh-qa index --articles {seed_settings.articles_dir} "
        f"--index {seed_settings.index_dir}`, or pass --allow-stale"
    )
    result = run(*args("ask", "talks", "-k", "1", "--allow-stale"))
    assert result.exit_code == 0
    assert "warning: index is stale (1 article file changed)" in result.output


def test_index_named_files_only(run, seed_settings, tmp_path):
    """`index FILE...` looks at those articles only: no folder scan, so a change
    elsewhere in the folder waits for the next plain `index`."""
    assert run(*args("index")).exit_code == 0
    folder = seed_settings.articles_dir
    write(folder, "005_new.txt", "Peace talks resumed in Geneva on Tuesday.\n")
    write(folder, "006_other.txt", "Drone footage showed the destroyed bridge.\n")
    result = run(*args("index", str(folder / "005_new.txt")))
    assert result.exit_code == 0, result.output
    assert "added 1, changed 0, removed 0" in result.output
    (folder / "005_new.txt").unlink()
    result = run(*args("index", str(folder / "005_new.txt")))  # missing: removed
    assert "added 0, changed 0, removed 1" in result.output
    result = run(*args("index"))
    assert "added 1, changed 0, removed 0" in result.output  # 006 was never looked at
    outside = write(tmp_path / "elsewhere", "x.txt", "Text.\n")
    result = run(*args("index", str(outside)))
    assert result.exit_code == 1
    assert result.output.strip().endswith(f"is not a file inside the articles folder {folder}")
    result = run(*args("index", "--full", str(folder / "006_other.txt")))
    assert result.exit_code == 1
    assert "FILES cannot be combined with --full, --repair or --watch" in result.output


def test_index_report_says_things_once_and_in_good_english(run, seed_settings):
    write(seed_settings.articles_dir, "bad.txt", b"\x00\x01binary")
    result = run(*args("index"))
    assert result.exit_code == 0
    assert result.output.count("skipped bad.txt") == 1  # the report says it; the log does not
    assert "; 1 segment\n" in result.output and "1 segments" not in result.output
    again = run(*args("index"))
    assert "up to date (5 articles, 86 passages, 1 segment); nothing written" in again.output


@pytest.mark.parametrize("command", ["beir", "squad", "news"])
def test_eval_help_lists_only_flags_that_apply(run, command):
    out = run("eval", command, "--help").output
    assert "--model" in out and "--articles" not in out and "--index " not in out
