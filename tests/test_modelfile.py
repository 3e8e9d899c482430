import pytest

from polypview.errors import ModelFileError
from polypview.inference.runtime.modelfile import KEY_PREFIX, ModelInfo, neopolyp_info


def test_metadata_round_trip():
    info = neopolyp_info("nanonet-a-neo", 256, version="1", metrics={"dice": 0.8})
    back = ModelInfo.from_metadata(info.to_metadata())
    assert back == info
    assert back.colors == ((255, 0, 0), (0, 255, 0))


def test_missing_metadata_is_named():
    props = neopolyp_info("x", 256).to_metadata()
    del props[KEY_PREFIX + "classes"]
    with pytest.raises(ModelFileError, match="classes"):
        ModelInfo.from_metadata(props)


def test_inconsistent_metadata_refused():
    with pytest.raises(ModelFileError, match="colours"):
        ModelInfo("x", ("a", "b"), ((1, 2, 3),), "softmax", (256, 256))
    with pytest.raises(ModelFileError, match="activation"):
        ModelInfo("x", ("a",), ((1, 2, 3),), "relu", (256, 256))


def test_a_model_file_may_carry_its_own_region_peak_and_nothing_else_of_the_overlay():
    from polypview.inference.runtime.modelfile import ModelInfo, neopolyp_info

    info = neopolyp_info("nanonet-lite0-neo", 256, overlay={"min_peak": 0.95})
    assert ModelInfo.from_metadata(info.to_metadata()).overlay == {"min_peak": 0.95}
    assert neopolyp_info("nanonet-lite0-neo", 256).overlay == {}  # none: the app's defaults
    for bad, word in (({"opacity": 0.3}, "opacity"), ({"min_peak": 1.5}, "min_peak"),
                      ({"min_peak": "high"}, "min_peak"), ([0.9], "overlay")):
        with pytest.raises(ModelFileError, match=word):
            neopolyp_info("nanonet-lite0-neo", 256, overlay=bad)
