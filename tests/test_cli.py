"""The command line as a new user meets it: --version, --help, and every option explained."""

from __future__ import annotations

import argparse

import pytest

from polypview.cli import SUBCOMMANDS, _parser_for, main
from polypview.inference.runtime.engine import DEFAULT_MODEL, find_models


def test_version(capsys):
    from polypview import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"polypview {__version__}"


def test_help_names_the_shipped_models_and_the_default(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping inside a name
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert find_models() and all(name in text for name in find_models())
    assert f"{DEFAULT_MODEL} (default)" in text and "batch:" in text


@pytest.mark.parametrize("name", [None, *SUBCOMMANDS])
def test_every_option_says_what_it_does(name):
    parser, _ = _parser_for(name)
    silent = [a.option_strings or a.dest for a in parser._actions
              if not isinstance(a, argparse._HelpAction) and not a.help]
    assert not silent, f"options without help text in `polypview {name or ''}`: {silent}"


def test_verbose_says_which_provider_runs(capsys):
    import logging

    log = logging.getLogger("polypview")
    try:
        assert main(["--verbose", "--demo", "--headless", "--sync", "--frames", "3", "--model", "nanonet-c-neo"]) == 0
        assert "ONNX Runtime provider: CPUExecutionProvider" in capsys.readouterr().err
    finally:  # leave no handler on a stream pytest closes
        for handler in list(log.handlers):
            log.removeHandler(handler)
        log.setLevel(logging.NOTSET)


def test_the_window_path_checks_options_as_headless_does(tmp_path, capsys):
    clip = tmp_path / "case.mp4"
    clip.write_bytes(b"")
    assert main(["--video", str(clip), "--frames", "0"]) == 2
    assert main(["--video", str(clip), "--record", str(clip)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--frames must be positive" in err[0] and "is the input video" in err[1]


def test_one_settings_object_checks_every_option(tmp_path):
    from polypview.errors import ConfigError
    from polypview.run import add_arguments
    from polypview.settings import STALENESS_MS, Settings

    parser = argparse.ArgumentParser()
    add_arguments(parser)

    def settings(*argv):
        return Settings.from_args(parser.parse_args(list(argv)))

    s = settings("--demo", "--size", "720p", "--opacity", "0.3", "--legend")
    assert s.source == "demo" and s.size == (1280, 720) and s.staleness_s == STALENESS_MS / 1000
    assert s.overlay_settings().opacity == 0.3 and s.overlay_settings().legend
    assert s.pipeline_config().staleness_s == s.staleness_s
    assert settings("--demo", "--min-peak", "0.9").overlay_settings().min_peak == 0.9
    assert settings("--demo", "--style", "box").overlay_settings().style == "box"
    assert settings("--demo", "--name-tags").overlay_settings().name_tags
    assert not settings("--demo").overlay_settings().name_tags
    assert settings("--demo", "--class-confidence", "0.9").overlay_settings().class_confidence == 0.9
    assert settings("--demo").overlay_settings().class_confidence == 0.0
    assert settings("--demo", "--alert-sound").alert_sound and not settings("--demo").alert_sound
    from polypview.inference.runtime.modelfile import neopolyp_info

    own = neopolyp_info("nanonet-lite0-neo", 256, overlay={"min_peak": 0.95})  # a model file's own region peak
    assert settings("--demo").overlay_settings(own).min_peak == 0.95
    assert settings("--demo").overlay_settings(neopolyp_info("x", 256)).min_peak == 0.9  # none: the app's
    assert settings("--demo", "--min-peak", "0").overlay_settings(own).min_peak == 0.0  # the command line wins
    for bad, message in ((["--threads", "0"], "--threads"), (["--staleness-ms", "0"], "--staleness-ms"),
                         (["--fps", "-5"], "--fps"), (["--opacity", "2"], "opacity"), (["--frames", "0"], "--frames"),
                         (["--min-peak", "1.2"], "min_peak"), (["--class-confidence", "1.5"], "class_confidence")):
        with pytest.raises(ConfigError, match=message):
            settings("--demo", *bad)
    with pytest.raises(SystemExit):  # argparse's own one-line usage error
        settings("--demo", "--size", "huge")
    with pytest.raises(SystemExit):
        settings("--demo", "--style", "halo")
