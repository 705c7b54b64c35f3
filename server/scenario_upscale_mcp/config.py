"""Configuration from the environment (see the README's environment table).

Nothing here touches the network or the disk beyond resolving folder names,
so a server with no credentials still starts and lists its tools.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

APP_NAME = "scenario-upscale-mcp"
DEFAULT_BASE_URL = "https://api.cloud.scenario.com/v1"
# The simulator accepts any non-empty credentials; these make sandbox mode work with none configured.
SANDBOX_CREDENTIAL = "sandbox"
SANDBOX_STATE_FOLDER = "sandbox"  # in the state folder: the sandbox ledger
SIMULATOR_STATE_FOLDER = "simulator"  # in the sandbox ledger's folder: the simulator's own state


class Settings(BaseSettings):
    """Every setting the server reads. Field names map to SCENARIO_* variables."""

    # env_ignore_empty: a variable set to "" is unset (its default). Hosts' config forms send "" for a field
    # left blank, and "" is never a meaningful value here (no folder, number or URL is empty).
    model_config = SettingsConfigDict(
        env_prefix="SCENARIO_", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SCENARIO_SDK_API_KEY", "SCENARIO_API_KEY")
    )
    api_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SCENARIO_SDK_API_SECRET", "SCENARIO_API_SECRET")
    )
    base_url: str | None = Field(
        default=None, description="API base; unset means the real API (or the sandbox)"
    )
    project_id: str | None = None
    output_dir: Path = Field(default_factory=lambda: platformdirs.user_pictures_path() / APP_NAME)
    allowed_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=lambda: [Path.home()])
    state_dir: Path = Field(default_factory=lambda: platformdirs.user_data_path(APP_NAME))
    sandbox: bool = False

    # Advanced knobs, documented in the README; the defaults suit desktop hosts.
    max_wait_seconds: float = Field(default=600.0, ge=0, description="cap on any tool's `wait`")
    poll_initial_seconds: float = Field(default=1.0, gt=0)
    poll_max_seconds: float = Field(default=5.0, gt=0)
    http_timeout_seconds: float = Field(default=60.0, gt=0)
    max_input_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    max_input_pixels: int = Field(default=100_000_000, gt=0)
    max_parallel_jobs: int | None = Field(
        default=None, ge=1, description="queue submissions beyond this many"
    )

    # The spending guard (jobs/spending.py), in creative units; unset: no limit, no extra dry run.
    max_credits_per_call: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="refuse a tool call quoted above this"
    )
    max_credits_per_day: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="refuse a call that takes the last 24 h's spending above this",
    )
    confirm_above_credits: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="ask the user before a call quoted above this"
    )
    max_batch_images: int = Field(default=100, ge=1, le=1000, description="images in one upscale_batch call")

    @field_validator("allowed_dirs", mode="before")
    @classmethod
    def _split_path_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part for part in value.split(os.pathsep) if part.strip()]
        return value

    @field_validator("output_dir", "state_dir", mode="after")
    @classmethod
    def _expand_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("allowed_dirs", mode="after")
    @classmethod
    def _expand_dirs(cls, value: list[Path]) -> list[Path]:
        return [path.expanduser().resolve() for path in value]

    def credentials(self) -> tuple[str, str] | None:
        """The Basic-auth pair, or None when none is configured (the sandbox needs none)."""
        if self.api_key and self.api_secret:
            return self.api_key.get_secret_value(), self.api_secret.get_secret_value()
        if self.sandbox:
            return SANDBOX_CREDENTIAL, SANDBOX_CREDENTIAL
        return None

    @property
    def sandbox_state_dir(self) -> Path:
        """The sandbox ledger's folder: jobs run on the simulator are not Scenario's, so they never go
        in the real ledger."""
        return self.state_dir / SANDBOX_STATE_FOLDER

    @property
    def simulator_state_dir(self) -> Path:
        """Where the simulator keeps its assets, jobs and uploads (beside the sandbox ledger), so that a
        restarted server, or a standalone `scenario-upscale-mcp sandbox`, finds them again."""
        return self.sandbox_state_dir / SIMULATOR_STATE_FOLDER

    @property
    def read_roots(self) -> list[Path]:
        """Folders images may be read from: the allowed roots plus the output folder (to re-upscale a result)."""
        return [*self.allowed_dirs, self.output_dir]
