"""``activebatch --help`` and every sub-command's ``--help`` import no torch (the parser is built
from plain data); timings are in benchmarks/cli_startup.py."""
import json
import subprocess
import sys
import textwrap

from activebatch.cli.helptext import ARRAY_FIELDS, FILE_STRATEGIES


def test_help_of_every_command_imports_no_torch():
    # Each command's --help in turn, in one fresh interpreter; the sub-commands are read from the
    # parser itself, so a new one is covered without touching this test.
    code = textwrap.dedent("""
        import contextlib, io, json, sys
        from activebatch.cli.main import _build_parser, main

        parser = _build_parser()
        commands = [""] + sorted(parser._subparsers._group_actions[0].choices)
        report = {}
        for cmd in commands:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                try:
                    main(([cmd] if cmd else []) + ["--help"])
                except SystemExit as exc:
                    code = exc.code
            heavy = sorted(m for m in ("torch", "pandas") if m in sys.modules)
            report[cmd] = {"code": code, "usage": out.getvalue().startswith("usage: activebatch"), "heavy": heavy}
        print(json.dumps(report))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"", "demo", "bench", "report", "select", "init", "query", "export", "import", "status", "serve",
            "strategies", "datasets"} <= set(report)
    for cmd, r in report.items():
        assert r == {"code": 0, "usage": True, "heavy": []}, (cmd or "(top level)", r)


def test_help_data_matches_the_registries():
    # The parser's plain copies of what the select command accepts (see activebatch.cli.helptext).
    from activebatch.cli.select import array_fields, file_strategies

    assert list(ARRAY_FIELDS.items()) == list(array_fields().items())
    assert FILE_STRATEGIES == tuple(file_strategies()), \
        "update FILE_STRATEGIES in src/activebatch/cli/helptext.py to the strategies that run from files"
