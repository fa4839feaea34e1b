"""``deploy/terraform`` passes ``terraform fmt -check`` always, and ``terraform validate`` when
the AWS provider is in a local plugin mirror (no network: nothing is downloaded)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

TERRAFORM_DIR = Path(__file__).resolve().parents[2] / "deploy" / "terraform"
MIRRORS = (
    os.environ.get("TF_PLUGIN_CACHE_DIR", ""),
    "/opt/tf-plugins",
    str(Path.home() / ".terraform.d" / "plugins"),
    "/usr/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
)
TIMEOUT_S = 240  # a guard against hanging, not a speed assertion


def terraform() -> str:
    found = shutil.which("terraform")
    if found is None:
        pytest.skip("terraform is not installed (looked on PATH)")
    return found


def aws_provider_mirror() -> Path | None:
    for folder in filter(None, MIRRORS):
        if any(
            Path(folder).glob("registry.terraform.io/hashicorp/aws/*/*/terraform-provider-aws*")
        ):
            return Path(folder)
    return None


def run(args: list[str], cwd: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    rc = tmp_path / "terraformrc"
    rc.write_text("", encoding="utf-8")  # no machine config: no network mirrors, no creds
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "TF_CLI_CONFIG_FILE": str(rc),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
    }
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


def test_the_files_are_terraform_fmt_clean(tmp_path: Path) -> None:
    done = run([terraform(), "fmt", "-check", "-diff", "-recursive"], TERRAFORM_DIR, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_configuration_validates_with_the_local_aws_provider(tmp_path: Path) -> None:
    binary = terraform()
    mirror = aws_provider_mirror()
    if mirror is None:
        pytest.skip(
            "terraform validate skipped: no hashicorp/aws provider in a local plugin mirror "
            f"({', '.join(filter(None, MIRRORS))}); the test never downloads it"
        )
    work = tmp_path / "terraform"
    work.mkdir()
    for source in TERRAFORM_DIR.glob("*.tf"):
        shutil.copy(source, work / source.name)  # .terraform/ stays out of the repository
    init = run(
        [binary, "init", "-backend=false", "-input=false", f"-plugin-dir={mirror}"],
        work,
        tmp_path,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    validate = run([binary, "validate", "-no-color"], work, tmp_path)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "The configuration is valid" in validate.stdout


def test_the_sample_event_is_an_eventbridge_scheduled_event() -> None:
    import json

    event = json.loads((TERRAFORM_DIR / "sample_event.json").read_text(encoding="utf-8"))
    assert event["detail-type"] == "Scheduled Event"
    assert event["time"].endswith("Z") and event["detail"]["categories"] == ["MLB1051", "MLB1648"]
