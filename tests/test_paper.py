"""Real paper (issue 22): notebook rules and margins, squared paper, pens and pencil, hard shadows,
a sheet photographed at an angle on a table. Photos made here from MNIST test digits, read by the
small CNN after `prepare_upload`; bad input still gets one sentence."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from benchmarks import photos
from vae_core.errors import ImageError
from vae_core.images import (
    LEFT_OUT_NOTE,
    NOT_A_DIGIT_NOTE,
    POINTED_NOTE,
    UNSURE_NOTES,
    WORK_SIDE,
    prepare_digits,
    prepare_upload,
)

PER_CONDITION = 40  # photos per kind of paper: enough to tell 95% from 80%, seconds to run


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _names(pre) -> list[str]:
    return [name for name, _ in pre.steps]


def _one_sentence(msg: str) -> None:
    assert msg.endswith(".") and ". " not in msg and "Traceback" not in msg and len(msg) < 250, msg


# ---------------------------------------------------------------- read right, per kind of paper
@pytest.mark.parametrize("condition", photos.CONDITIONS)
def test_each_kind_of_real_paper_is_read_right(condition, digit_reader, full_mnist):
    made = photos.condition_set(full_mnist.x_test, full_mnist.y_test, condition, PER_CONDITION)
    score = photos.score_photos(digit_reader.model, made)
    missed = [(p.label, got) for p, got, _ in score.failures]
    # 36 of 40 at least (before issue 22: 5 of 40 on a tilted sheet, 11 on ruled paper); the
    # benchmark's 200 photos per kind hold each to 95% (benchmarks/RESULTS.md).
    assert score.recognised >= 36, (condition, score.recognised, missed)


# ---------------------------------------------------------------- the step strip tells the story
def test_a_tilted_sheet_is_found_and_straightened_and_the_table_left_out(full_mnist):
    rng = np.random.default_rng(4)
    photo = photos.make_condition_photo(full_mnist.x_test[0], 7, "tilted", rng)
    pre = prepare_upload(photo.data, photo.filename)
    names = _names(pre)
    assert names[1] == "Sheet found and straightened", names
    original, sheet = pre.steps[0][1], pre.steps[1][1]
    # The dark table was all around the sheet; what is left is paper, light to every edge.
    assert np.median(original[:5]) < 0.45 and np.median(sheet[:5]) > 0.6
    assert np.median(sheet[:, :5]) > 0.6 and np.median(sheet[:, -5:]) > 0.6
    assert pre.digit.max() > 0.9


def test_notebook_rules_and_the_margin_are_removed(full_mnist):
    rng = np.random.default_rng(5)
    photo = photos.make_condition_photo(full_mnist.x_test[1], 2, "ruled", rng)
    pre = prepare_upload(photo.data, photo.filename)
    names = _names(pre)
    at = names.index("Rules removed")
    before, after = pre.steps[at - 1][1], pre.steps[at][1]
    # The rules (rows) and the margin (a column): strongly marked before, gone after.
    rows_before, rows_after = np.median(before, axis=1), np.median(after, axis=1)
    rules = rows_before > 0.05
    assert rules.sum() >= 10 and np.percentile(rows_after[rules], 90) < 0.02
    margin = int(np.argmax(np.median(before, axis=0)))
    assert np.median(before[:, margin]) > 0.1 and np.median(after[:, margin]) < 0.02
    assert any("Printed lines" in n for n in pre.notes)


def test_a_hard_shadow_is_evened_out(full_mnist):
    rng = np.random.default_rng(6)
    photo = photos.make_condition_photo(full_mnist.x_test[2], 1, "shadow", rng)
    pre = prepare_upload(photo.data, photo.filename)
    names = _names(pre)
    at = names.index("Shadow evened out")
    before, after = pre.steps[at - 1][1], pre.steps[at][1]
    # Half the sheet was in shade; after evening out the paper is black in the shade and out of it.
    assert np.percentile(before, 90) - np.percentile(before, 10) > 0.2
    assert np.percentile(after, 90) < 0.05


def test_plain_photos_keep_todays_steps():
    from vae_core.data import load_sample

    x, y = load_sample()
    rng = np.random.default_rng(8)
    for k, variant in enumerate(photos.VARIANTS * 2):
        photo = photos.make_photo(x[k], int(y[k]), variant, rng)
        names = _names(prepare_upload(photo.data, photo.filename))
        assert "Sheet found and straightened" not in names and "Rules removed" not in names, (
            variant,
            names,
        )


def test_a_twelve_megapixel_photo_is_scaled_down_first(full_mnist):
    rng = np.random.default_rng(9)
    photo = photos.make_condition_photo(full_mnist.x_test[3], 0, "tilted", rng)
    big = Image.open(io.BytesIO(photo.data)).resize((4000, 3000), Image.Resampling.BILINEAR)
    pre = prepare_upload(_jpeg(big), "phone.jpg")
    assert all(max(img.shape) <= WORK_SIDE for _, img in pre.steps)
    assert _names(pre)[1] == "Sheet found and straightened"


# ---------------------------------------------------------------- rows on notebook paper
def test_2024_on_ruled_paper_splits_into_its_digits(digit_reader, full_mnist):
    rng = np.random.default_rng(2024)
    by_label = {d: np.flatnonzero(full_mnist.y_test == d) for d in (0, 2, 4)}
    split = read = 0
    for _ in range(8):
        idx = [int(rng.choice(by_label[d])) for d in (2, 0, 2, 4)]
        photo = prepare_digits(photos.ruled_row(full_mnist.x_test[idx], rng), "2024.jpg")
        if len(photo.digits) == 4:
            split += 1
            read += int((digit_reader.read(photo.digit_array()) == [2, 0, 2, 4]).sum())
    assert split >= 7, split
    assert read >= 0.85 * 4 * split, (read, split)


# ---------------------------------------------------------------- bad input: one sentence
def _text_page(rng: np.random.Generator, ruled: bool) -> Image.Image:
    """A page of handwriting-like scribbles, line after line (words of 2-6 letters)."""
    img = Image.new("RGB", (900, 1200), (235, 232, 225))
    draw = ImageDraw.Draw(img)
    if ruled:
        for y in range(40, 1200, 32):
            draw.line([(0, y), (900, y)], fill=(170, 190, 235), width=2)
    for line in range(8, 36):
        x, y = 60, line * 32 - 4
        while x < 840:
            for _ in range(int(rng.integers(2, 7))):
                pts = [
                    (x + int(rng.integers(0, 14)), y - int(rng.integers(0, 20))) for _ in range(3)
                ]
                draw.line(pts, fill=(40, 40, 60), width=2)
                x += 14
            x += 18
    return img.filter(ImageFilter.GaussianBlur(0.7))


def _face(rng: np.random.Generator) -> Image.Image:
    """A face-like photo: a lit oval with hair, eyes, nose and mouth, on a blue-grey wall."""
    img = Image.new("RGB", (600, 800), (70, 90, 120))
    draw = ImageDraw.Draw(img)
    draw.ellipse([140, 100, 460, 300], fill=(60, 40, 30))
    draw.ellipse([150, 180, 450, 600], fill=(225, 180, 150))
    draw.ellipse([220, 330, 270, 360], fill=(50, 40, 40))
    draw.ellipse([330, 330, 380, 360], fill=(50, 40, 40))
    draw.line([(300, 370), (290, 450), (310, 455)], fill=(170, 120, 100), width=5)
    draw.arc([240, 460, 360, 530], 20, 160, fill=(150, 60, 60), width=8)
    arr = np.asarray(img, np.float32) + rng.normal(0, 5, (800, 600, 1))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(1.5)
    )


@pytest.mark.parametrize("ruled", [False, True])
def test_a_photo_of_a_blank_page_is_empty_with_a_note(ruled):
    rng = np.random.default_rng(10)
    paper = photos._sheet(900, 700, rng)
    if ruled:
        paper, _ = photos._rules(paper, rng, squared=False)
    paper = paper + rng.standard_normal((900, 700, 1)).astype(np.float32) * 4
    data = _jpeg(Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)))
    pre = prepare_upload(data, "blank.jpg")
    assert pre.digit.max() == 0.0 and any("almost empty" in n for n in pre.notes), pre.notes
    assert prepare_digits(data, "blank.jpg").digits == []


@pytest.mark.parametrize("ruled", [False, True])
def test_a_page_of_writing_is_refused_in_one_sentence(ruled):
    data = _jpeg(_text_page(np.random.default_rng(11), ruled))
    for prepare in (prepare_upload, prepare_digits):
        with pytest.raises(ImageError) as err:
            prepare(data, "letter.jpg")
        msg = str(err.value)
        _one_sentence(msg)
        assert "writing" in msg and "crop" in msg


def test_a_face_is_no_digit_and_says_so_in_one_sentence():
    data = _jpeg(_face(np.random.default_rng(12)))
    for prepare in (prepare_upload, prepare_digits):
        notes = prepare(data, "selfie.jpg").notes
        assert NOT_A_DIGIT_NOTE in notes, notes
    _one_sentence(NOT_A_DIGIT_NOTE)


# ---------------------------------------------------------------- pointing at the digit
def test_a_point_on_the_photo_takes_the_mark_the_lab_would_not(full_mnist, digit_reader):
    """A large 8 doodled beside a small 3: the lab takes the 8 and says it may be wrong; the point
    on the 3 (as the page's click gives it: shares of the straightened photo) takes the 3."""
    x, y = full_mnist.x_test, full_mnist.y_test
    big, small = (int(np.flatnonzero(y == d)[0]) for d in (8, 3))
    data, point = photos.big_and_small(x[big], x[small], np.random.default_rng(0))
    photo = prepare_digits(data, "doodle.jpg")
    assert photo.unsure and LEFT_OUT_NOTE in photo.notes
    assert photo.page is not None and photo.page.shape == (600, 800)
    auto = prepare_upload(data, "doodle.jpg")
    pointed = prepare_upload(data, "doodle.jpg", point=point)
    on_the_8 = prepare_upload(data, "doodle.jpg", point=(0.3, 0.4))
    read = digit_reader.read(
        np.stack([photo.digits[0].digit, auto.digit, pointed.digit, on_the_8.digit])
    )
    assert read.tolist() == [8, 8, 3, 8]
    assert POINTED_NOTE in pointed.notes and not any(n in pointed.notes for n in UNSURE_NOTES)
