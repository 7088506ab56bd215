"""Every registered augmentation, whichever module registered it: its token parses, both of its forms keep its
stage's contract, and the lists that name augmentations come from the registry.

The cases are generated from :data:`accord.views.augmentation.REGISTRY` when the tests are collected, so an
augmentation added as docs/adding-an-augmentation.md says is checked here too (tests/test_adding_an_augmentation.py
runs this file with one added).
"""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.transforms import v2

from accord.config.files import CONFIG_DIR, parse_yaml
from accord.data import DataInfo
from accord.results import AUG_ORDER
from accord.views import REGISTRY, Augmentation, build_policy, parse_policy, register, unregister
from accord.views.augmentation import STAGES
from accord.views.augmentation_spaces import AUTOAUGMENT_POLICIES
from accord.views.batched import BatchedViews, check_batched_policy
from accord.views.tokens import parse_operation, valid_tokens

pytestmark = pytest.mark.usefixtures("one_thread")

RGB = DataInfo("cifar10", 10, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), fixed_size=True)
GRAY = DataInfo("fashion_mnist", 10, 1, 28, (0.2860,), (0.3530,), fixed_size=True)
NAMES = sorted(REGISTRY)
#: what each stage's forms take and give: (input dtype, output dtype)
DTYPES = {"geometry": torch.uint8, "uint8": torch.uint8, "float": torch.float32, "normalised": torch.float32}


def _images(n: int, dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(n)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    return x if dtype == torch.uint8 else x.float() / 255


@pytest.mark.parametrize("name", NAMES)
def test_every_token_parses_from_its_name_and_is_listed(name: str) -> None:
    cls = REGISTRY[name]
    assert cls.form.startswith(name) and cls.stage in STAGES
    assert name in valid_tokens()
    (augmentation,) = parse_policy(name, 32).augmentations  # the bare token: the defaults
    assert type(augmentation) is cls and augmentation.name == name
    twice = (augmentation,) if cls.slot else (augmentation, augmentation)  # a slot's last token counts
    assert parse_policy(f"{name}-{name}", 32).augmentations == twice
    with pytest.raises(ValueError, match=re.escape(cls.form)):
        parse_policy(f"{name}_x_y_z_w_v", 32)  # too many arguments for any token: its form in the message
    with pytest.raises(ValueError, match=rf"unknown token '{name}x'.*{re.escape(cls.form)}"):
        parse_policy(f"crop-{name}x", 32)


ARGUMENT = st.one_of(  # a token's arguments hold no "-": it separates tokens
    st.integers(0, 300).map(str),
    st.floats(0, 40).map(str).filter(lambda a: "-" not in a),
    st.sampled_from(["", "x", "p0.5", "p2", "bilinear", "agmax", "nan", "inf", "1e9", *AUTOAUGMENT_POLICIES]),
)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None)
@given(arguments=st.lists(ARGUMENT, max_size=5))
def test_any_arguments_parse_or_are_refused_in_one_line_naming_the_token(name: str, arguments: list[str]) -> None:
    token = "_".join([name, *arguments])
    try:
        parse_policy(f"crop-{token}", 32)
    except ValueError as e:
        assert repr(token) in str(e) and "\n" not in str(e)


@pytest.mark.parametrize("name", NAMES)
def test_every_token_runs_in_the_loader_pipeline(name: str) -> None:
    torch.manual_seed(0)
    out = build_policy(f"{name}", RGB)(_images(1, torch.uint8)[0])
    assert out.dtype == torch.float32 and out.shape == (3, 32, 32) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_every_token_runs_on_the_device_or_is_refused_in_one_line(name: str) -> None:
    augmentation = parse_policy(name, 32).augmentations[0]
    if augmentation.device_refusal():
        with pytest.raises(ValueError, match=f"token '{name}'.*augment_on: loader"):
            check_batched_policy(name, 32)
        return
    images = _images(4, torch.uint8)
    torch.manual_seed(0)
    views = BatchedViews([name, "crop-flip"], RGB)
    out = views(images)
    assert out.dtype == torch.float32 and out.shape == (8, 3, 32, 32) and torch.isfinite(out).all()
    form = augmentation.device(RGB)
    if isinstance(form, torch.nn.Module):  # a module form is a submodule: .to(device) moves it with the views
        assert type(form) in {type(m) for m in views.modules()}


@pytest.mark.parametrize("name", NAMES)
def test_every_token_repeats_from_torchs_generator_state(name: str) -> None:
    """Both forms draw from torch's global generator only, so a checkpoint's saved state (or a seed) repeats the
    views: a form that drew from Python's ``random`` or its own generator would make a resumed run differ."""
    images = _images(4, torch.uint8)
    policy = build_policy(f"crop-flip-{name}", RGB)
    views = None if parse_policy(name, 32).augmentations[0].device_refusal() else BatchedViews([name], RGB)
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        loader = torch.stack([policy(image) for image in images])
        runs.append([loader] if views is None else [loader, views(images)])
    assert all(torch.equal(first, second) for first, second in zip(*runs, strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_both_forms_keep_their_stage_contract(name: str) -> None:
    """A stage's forms take and give its dtype and keep the image's shape: the loader's on one image, the
    device's on a batch (each image its own draws, so the batch of one gives a valid image too)."""
    augmentation = parse_policy(name, 32).augmentations[0]
    dtype = DTYPES[augmentation.stage]
    images = _images(3, dtype)
    torch.manual_seed(0)
    one = augmentation.loader(RGB)(images[0])
    assert one.dtype == dtype and one.shape == images[0].shape
    if not augmentation.device_refusal():
        batch = augmentation.device(RGB)(images)
        assert batch.dtype == dtype and batch.shape == images.shape


@pytest.mark.parametrize("name", NAMES)
def test_every_token_runs_on_one_channel_images_or_is_refused_when_built(name: str) -> None:
    """A colour-only augmentation is refused in one line naming it when its views are built, in the loader and
    on the device alike; every other one makes 1-channel views in both."""
    images = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    if REGISTRY[name].colour_only:
        for build in (lambda: build_policy(name, GRAY), lambda: BatchedViews([name], GRAY)):
            with pytest.raises(ValueError, match=f"{name} needs colour \\(3-channel\\) images") as error:
                build()
            assert "\n" not in str(error.value)
        return
    torch.manual_seed(0)
    assert build_policy(name, GRAY)(images[0]).shape == (1, 28, 28)
    if not parse_policy(name, 28).augmentations[0].device_refusal():
        assert BatchedViews([name], GRAY)(images).shape == (2, 1, 28, 28)


@pytest.mark.parametrize("policy", list(AUTOAUGMENT_POLICIES))
def test_autoaugment_policies_are_stated_once_and_reach_both_forms(policy: str) -> None:
    augmentation = parse_operation(f"autoaug_{policy}")
    loader = augmentation.loader(RGB)
    assert isinstance(loader, v2.AutoAugment) and loader.policy == v2.AutoAugmentPolicy(policy)
    assert augmentation.device(RGB).policy == policy  # type: ignore[attr-defined]


def test_register_refuses_a_taken_or_malformed_name() -> None:
    Twin = type("Twin", (REGISTRY["crop"],), {})

    with pytest.raises(ValueError, match="already registered"):
        register(Twin)
    for name in ("", "my_op", "my-op", "standard"):
        bad = type("Bad", (Augmentation,), {"name": name, "form": name})
        with pytest.raises(ValueError, match="augmentation name"):
            register(bad)
    assert REGISTRY["crop"] is not Twin
    unregister("no-such-name")  # nothing to remove: nothing happens


def test_aug_order_lists_every_augmentation_fragment_once() -> None:
    """The report's row order is derived from the fragments: every one, each once, those without an image
    operation first (the standard row at the top)."""
    fragments = {path.stem: parse_yaml(path.read_text()) for path in (CONFIG_DIR / "augs").glob("*.yaml")}
    assert sorted(AUG_ORDER) == sorted(fragments)
    plain = [a for a in AUG_ORDER if not parse_policy(fragments[a].get("policy", "crop-flip"), 224).operations]
    assert AUG_ORDER[: len(plain)] == tuple(plain) and AUG_ORDER[0] == "standard"


def test_a_slot_holds_the_last_of_its_tokens() -> None:
    """A view holds one lighting and one CutOut, clipped or not: of several tokens the last counts, as configs
    whose views repeat ``jitter-lighting`` rely on (every other token applies as often as it is written)."""
    policy = parse_policy("crop-cutout_4-lighting_0.3-jitter-ccutout_6-lighting_0.2-jitter", 32)
    assert [a.name for a in policy.augmentations] == ["crop", "jitter", "ccutout", "lighting", "jitter"]
    assert policy.cutout == 6 and policy.lighting == 0.2
    slots = {cls.slot for cls in REGISTRY.values() if cls.slot}
    assert slots >= {"lighting", "cutout"}
