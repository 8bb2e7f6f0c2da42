"""A PROMOTED marker that names no usable version is a RegistryError that names the marker.

Before: a marker that was not UTF-8 raised UnicodeDecodeError (a traceback from `models
predict` and `models list`, a 500 where the API reports the model); an empty one gave
"invalid version ''", and one naming a removed version "no model x/y", neither saying that
PROMOTED was where the name came from.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tw_testing import registry_with_promoted

from shared.inference.registry import RegistryError


@pytest.mark.parametrize(
    ("marker", "words"),
    [(b"\xff\xfe", "is not UTF-8 text"), (b"\n", "is empty"), (b"gone\n", "names 'gone': no model sentiment/gone")],
)
def test_a_marker_naming_no_usable_version_is_a_registry_error_naming_it(
    tmp_path: Path, marker: bytes, words: str
) -> None:
    reg = registry_with_promoted(tmp_path, marker)
    with pytest.raises(RegistryError, match="PROMOTED") as caught:
        reg.promoted("sentiment")
    assert words in str(caught.value)


def test_a_readable_marker_still_names_its_version(tmp_path: Path) -> None:
    reg = registry_with_promoted(tmp_path, b"v1\n")
    assert reg.promoted_version("sentiment") == "v1" and reg.promoted("sentiment").version == "v1"


def test_a_marker_an_editor_saved_with_a_byte_order_mark_names_its_version(tmp_path: Path) -> None:
    reg = registry_with_promoted(tmp_path, b"\xef\xbb\xbfv1\r\n")
    assert reg.promoted_version("sentiment") == "v1"
