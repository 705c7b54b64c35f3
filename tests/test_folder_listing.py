"""A folder and a pattern become the images of a batch: what is listed, what is skipped and why, and
what is refused. Pure local work on temporary folders; nothing here touches the network."""

from __future__ import annotations

import io
import os
import unicodedata
from pathlib import Path

import pytest
from PIL import Image

from scenario_upscale_mcp.api.errors import InputError
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.images.folders import (
    HIDDEN,
    NOT_A_FILE,
    NOT_AN_IMAGE,
    OUTPUT_FOLDER,
    SUB_FOLDER,
    SYMLINK,
    FolderListing,
    Skipped,
    describe_skipped,
    list_folder_images,
)
from tests.images import png_bytes

needs_symlinks = pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="POSIX symlinks")


def image_bytes(image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 120, 200)).save(buffer, image_format)
    return buffer.getvalue()


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    folder = tmp_path / "allowed"
    folder.mkdir()
    return folder.resolve()


@pytest.fixture
def settings(allowed: Path, tmp_path: Path) -> Settings:
    return Settings(allowed_dirs=[allowed], output_dir=tmp_path / "outputs", state_dir=tmp_path / "state")


@pytest.fixture
def textures(allowed: Path) -> Path:
    """rock.png, Grass.JPG and water.webp beside a text file, a hidden PNG, a .png holding text, a
    TGA, a sub-folder with an image, a hidden folder with an image, and symlinks to an image and to
    the sub-folder."""
    folder = allowed / "textures"
    folder.mkdir()
    (folder / "rock.png").write_bytes(png_bytes())
    (folder / "Grass.JPG").write_bytes(image_bytes("JPEG"))
    (folder / "water.webp").write_bytes(image_bytes("WEBP"))
    (folder / "notes.txt").write_text("albedo maps go here\n")
    (folder / ".hidden.png").write_bytes(png_bytes())
    (folder / "fake.png").write_text("not a picture at all\n")
    (folder / "old.tga").write_bytes(image_bytes("TGA"))
    (folder / "sub").mkdir()
    (folder / "sub" / "inner.png").write_bytes(png_bytes())
    (folder / ".git").mkdir()
    (folder / ".git" / "secret.png").write_bytes(png_bytes())
    if os.name != "nt":
        (folder / "link.png").symlink_to(folder / "rock.png")
        (folder / "linked").symlink_to(folder / "sub", target_is_directory=True)
    return folder


def reasons(listing: FolderListing) -> dict[str, str]:
    return {item.path: item.reason for item in listing.skipped}


def names(listing: FolderListing) -> list[str]:
    return [path.relative_to(listing.folder).as_posix() for path in listing.images]


@needs_symlinks
def test_a_folder_lists_its_images_in_order_and_says_why_each_other_entry_was_skipped(
    textures: Path, settings: Settings
) -> None:
    listing = list_folder_images(str(textures), "*", recursive=False, settings=settings, limit=100)

    assert listing.folder == textures
    assert listing.images == [textures / "Grass.JPG", textures / "rock.png", textures / "water.webp"]
    assert reasons(listing) == {
        ".git/": HIDDEN,
        ".hidden.png": HIDDEN,
        "fake.png": NOT_AN_IMAGE,
        "link.png": SYMLINK,
        "linked": SYMLINK,
        "notes.txt": NOT_AN_IMAGE,
        "old.tga": "TGA image, a format the API does not take",
        "sub/": SUB_FOLDER,
    }
    assert [item.path for item in listing.skipped] == sorted(reasons(listing), key=str.casefold)


@needs_symlinks
def test_recursive_descends_into_sub_folders_but_never_hidden_or_symlinked_ones(
    textures: Path, settings: Settings
) -> None:
    listing = list_folder_images(str(textures), "*", recursive=True, settings=settings, limit=100)

    assert names(listing) == ["Grass.JPG", "rock.png", "sub/inner.png", "water.webp"]
    assert reasons(listing) == {
        ".git/": HIDDEN,
        ".hidden.png": HIDDEN,
        "fake.png": NOT_AN_IMAGE,
        "link.png": SYMLINK,
        "linked": SYMLINK,
        "notes.txt": NOT_AN_IMAGE,
        "old.tga": "TGA image, a format the API does not take",
    }


@needs_symlinks
def test_the_pattern_matches_names_case_insensitively_and_non_matching_files_are_listed(
    textures: Path, settings: Settings
) -> None:
    pngs = list_folder_images(str(textures), "*.PNG", recursive=True, settings=settings, limit=100)
    jpegs = list_folder_images(str(textures), "*.jpg", recursive=False, settings=settings, limit=100)

    assert names(pngs) == ["rock.png", "sub/inner.png"]
    assert reasons(pngs)["Grass.JPG"] == "does not match *.PNG"
    assert reasons(pngs)["notes.txt"] == "does not match *.PNG"
    assert reasons(pngs)["fake.png"] == NOT_AN_IMAGE  # matches by name, but is text
    assert names(jpegs) == ["Grass.JPG"]


def test_a_name_decomposed_on_disk_matches_a_composed_pattern(allowed: Path, settings: Settings) -> None:
    decomposed = unicodedata.normalize("NFD", "café.png")
    (allowed / decomposed).write_bytes(png_bytes())

    listing = list_folder_images(str(allowed), "CAFÉ*", recursive=False, settings=settings, limit=10)

    assert listing.images == [allowed / decomposed]


def test_the_folder_may_be_given_with_a_tilde_or_as_a_file_uri(
    allowed: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    (allowed / "rock.png").write_bytes(png_bytes())
    monkeypatch.setenv("HOME", str(allowed.parent))

    by_tilde = list_folder_images("~/allowed", "*", recursive=False, settings=settings, limit=10)
    by_uri = list_folder_images(allowed.as_uri(), "*", recursive=False, settings=settings, limit=10)

    assert by_tilde.images == by_uri.images == [allowed / "rock.png"]


@pytest.mark.parametrize("pattern", ["sub/*.png", "..", "../*.png", "*..png", "sub\\*.png", ""])
def test_a_pattern_that_names_more_than_a_file_name_is_refused(
    textures: Path, settings: Settings, pattern: str
) -> None:
    with pytest.raises(InputError, match=r"^pattern: "):
        list_folder_images(str(textures), pattern, recursive=False, settings=settings, limit=100)


def test_a_folder_outside_the_allowed_folders_is_refused_naming_them(
    tmp_path: Path, allowed: Path, settings: Settings
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "rock.png").write_bytes(png_bytes())

    with pytest.raises(InputError, match=r"^folder: .* outside the folders this server may read") as caught:
        list_folder_images(str(elsewhere), "*", recursive=False, settings=settings, limit=100)

    assert f"({allowed})" in str(caught.value)
    assert "SCENARIO_ALLOWED_DIRS" in str(caught.value)


@needs_symlinks
def test_a_symlinked_folder_argument_is_judged_by_where_it_leads(
    tmp_path: Path, allowed: Path, settings: Settings
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (allowed / "shortcut").symlink_to(elsewhere, target_is_directory=True)
    (allowed / "inside").mkdir()
    (allowed / "inside" / "rock.png").write_bytes(png_bytes())
    (allowed / "alias").symlink_to(allowed / "inside", target_is_directory=True)

    with pytest.raises(InputError, match="outside the folders this server may read"):
        list_folder_images(str(allowed / "shortcut"), "*", recursive=False, settings=settings, limit=10)
    listing = list_folder_images(str(allowed / "alias"), "*", recursive=False, settings=settings, limit=10)

    assert listing.images == [allowed / "inside" / "rock.png"]


def test_a_hidden_folder_is_refused_even_inside_the_allowed_folders(
    allowed: Path, settings: Settings
) -> None:
    (allowed / ".ssh").mkdir()

    with pytest.raises(InputError, match=r"^folder: .* inside the hidden folder or file '\.ssh'"):
        list_folder_images(str(allowed / ".ssh"), "*", recursive=False, settings=settings, limit=10)


def test_a_file_a_missing_folder_and_a_relative_path_are_refused_by_name(
    textures: Path, settings: Settings
) -> None:
    with pytest.raises(InputError, match=r"^folder: .*rock\.png is a file, not a folder"):
        list_folder_images(str(textures / "rock.png"), "*", recursive=False, settings=settings, limit=10)
    with pytest.raises(InputError, match=r"^folder: no folder at .*missing"):
        list_folder_images(str(textures / "missing"), "*", recursive=False, settings=settings, limit=10)
    with pytest.raises(InputError, match=r"^folder: 'textures' is not an absolute path"):
        list_folder_images("textures", "*", recursive=False, settings=settings, limit=10)


def test_more_images_than_the_limit_are_refused_with_the_count_and_the_way_out(
    textures: Path, settings: Settings
) -> None:
    with pytest.raises(InputError) as caught:
        list_folder_images(str(textures), "*", recursive=True, settings=settings, limit=2)

    message = str(caught.value)
    assert message.startswith("folder: 4 images in ")
    assert "match pattern '*'" in message
    assert "more than the 2 one batch may hold" in message
    assert "SCENARIO_MAX_BATCH_IMAGES" in message
    assert "Narrow the pattern" in message


@needs_symlinks
def test_no_matching_image_is_refused_with_what_was_skipped(textures: Path, settings: Settings) -> None:
    with pytest.raises(InputError) as caught:
        list_folder_images(str(textures), "*.exr", recursive=False, settings=settings, limit=10)

    message = str(caught.value)
    assert message.startswith(f"folder: no image in {textures} matches pattern '*.exr'. Skipped 11 entries: ")
    assert "does not match *.exr" in message
    assert f"sub/: {SUB_FOLDER}" in message
    assert f".git/: {HIDDEN}" in message
    assert "and 6 more" in message


def test_an_empty_folder_says_so(allowed: Path, settings: Settings) -> None:
    with pytest.raises(
        InputError,
        match=r"no image in .* matches pattern '\*' \(sub-folders included\)\. The folder is empty\.$",
    ):
        list_folder_images(str(allowed), "*", recursive=True, settings=settings, limit=10)


def test_the_output_folder_and_excluded_folders_are_not_listed_again(tmp_path: Path, allowed: Path) -> None:
    outputs = allowed / "results"
    batch = allowed / "art" / "upscaled"
    for folder in (outputs, batch):
        folder.mkdir(parents=True)
        (folder / "rock_x2.png").write_bytes(png_bytes())
    (allowed / "art" / "rock.png").write_bytes(png_bytes())
    settings = Settings(allowed_dirs=[allowed], output_dir=outputs, state_dir=tmp_path / "state")

    listing = list_folder_images(
        str(allowed), "*", recursive=True, settings=settings, limit=10, exclude=[batch]
    )

    assert names(listing) == ["art/rock.png"]
    assert reasons(listing) == {"art/upscaled/": OUTPUT_FOLDER, "results/": OUTPUT_FOLDER}


def test_an_image_over_the_size_cap_is_skipped_with_the_setting_to_raise(
    tmp_path: Path, allowed: Path
) -> None:
    (allowed / "small.png").write_bytes(png_bytes(4, 4))
    (allowed / "big.png").write_bytes(png_bytes(400, 400) + b"\0" * 5000)
    cap = len(png_bytes(4, 4)) + 10
    settings = Settings(allowed_dirs=[allowed], max_input_bytes=cap, state_dir=tmp_path / "state")

    listing = list_folder_images(str(allowed), "*.png", recursive=False, settings=settings, limit=10)

    assert names(listing) == ["small.png"]
    assert "SCENARIO_MAX_INPUT_BYTES" in reasons(listing)["big.png"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_named_pipe_is_skipped_without_being_opened(allowed: Path, settings: Settings) -> None:
    os.mkfifo(allowed / "pipe.png")
    (allowed / "rock.png").write_bytes(png_bytes())

    listing = list_folder_images(str(allowed), "*.png", recursive=False, settings=settings, limit=10)

    assert names(listing) == ["rock.png"]
    assert reasons(listing) == {"pipe.png": NOT_A_FILE}


def test_a_folder_too_large_to_list_is_refused(allowed: Path, settings: Settings) -> None:
    for index in range(12):
        (allowed / f"{index}.txt").write_text("x")

    with pytest.raises(InputError, match=r"^folder: .* more than 10 files and folders .* narrower folder"):
        list_folder_images(str(allowed), "*", recursive=True, settings=settings, limit=10, max_entries=10)


def test_a_summary_of_skipped_entries_shows_every_reason_before_repeating_one() -> None:
    skipped = [Skipped(f"{index:03}.txt", "does not match *.png") for index in range(100)]
    skipped.append(Skipped("z.png", NOT_AN_IMAGE))

    summary = describe_skipped(skipped, first=3)

    assert summary == (
        "101 entries: 000.txt: does not match *.png; 001.txt: does not match *.png; "
        "z.png: not an image; and 98 more"
    )
