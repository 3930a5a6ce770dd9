"""The container image, built for real with buildah (``make image-test``) where buildah is."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.integration
def test_the_image_builds_with_buildah_and_runs_help_and_a_replay_as_a_non_root_user() -> None:
    if shutil.which("buildah") is None or shutil.which("podman") is None:
        pytest.skip("buildah/podman not installed; `make image-test` installs them and builds")
    result = subprocess.run(
        ["make", "--no-print-directory", "image-test", "IMAGE=localhost/rapport:pytest"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Usage: rapport" in result.stdout
    assert "\nrapport\n" in result.stdout  # `id -un` inside the image
    assert "Journeys:" in result.stdout
    assert "cart_recovery: entered" in result.stdout
