"""The ledger's records of files moved in and out: uploads (content → asset, one upload per content,
claimed while it runs) and downloads (asset → where it was saved). A part of `Ledger`."""

from __future__ import annotations

from scenario_upscale_mcp.jobs.ledger_file import LedgerConnection


class UploadRecords(LedgerConnection):
    # --- uploads ----------------------------------------------------------------------------------

    def asset_for_content(self, content_hash: str) -> str | None:
        with self._reading() as db:
            row = db.execute(
                "SELECT asset_id FROM uploads WHERE content_hash = ?", (content_hash,)
            ).fetchone()
        return None if row is None else str(row["asset_id"])

    def upload_name(self, asset_id: str) -> str | None:
        """The file name this asset was uploaded from, if this ledger uploaded it."""
        with self._reading() as db:
            row = db.execute(
                "SELECT name FROM uploads WHERE asset_id = ? ORDER BY uploaded_at DESC LIMIT 1", (asset_id,)
            ).fetchone()
        return None if row is None else str(row["name"])

    def record_upload(self, *, content_hash: str, asset_id: str, name: str, size: int) -> None:
        """Remember the asset a file's content became; the latest upload wins."""
        with self._writing() as db:
            db.execute(
                "INSERT INTO uploads (content_hash, asset_id, name, size, uploaded_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (content_hash) DO UPDATE SET asset_id = excluded.asset_id, "
                "name = excluded.name, size = excluded.size, uploaded_at = excluded.uploaded_at",
                (content_hash, asset_id, name, size, self._clock()),
            )

    def claim_upload(self, content_hash: str, *, stale_after: float) -> bool:
        """Claim the upload of a content; False while another caller's claim younger than `stale_after` holds.

        One transaction, so two callers (threads or processes) never both claim the same content. A
        claim older than `stale_after` belongs to a caller that died mid-upload and is taken over.
        """
        now = self._clock()
        with self._writing() as db:
            row = db.execute(
                "SELECT claimed_at FROM upload_claims WHERE content_hash = ?", (content_hash,)
            ).fetchone()
            if row is not None and row["claimed_at"] >= now - stale_after:
                return False
            db.execute(
                "INSERT INTO upload_claims (content_hash, claimed_at) VALUES (?, ?) "
                "ON CONFLICT (content_hash) DO UPDATE SET claimed_at = excluded.claimed_at",
                (content_hash, now),
            )
            return True

    def renew_upload_claim(self, content_hash: str) -> None:
        with self._writing() as db:
            db.execute(
                "UPDATE upload_claims SET claimed_at = ? WHERE content_hash = ?",
                (self._clock(), content_hash),
            )

    def release_upload(self, content_hash: str) -> None:
        """End a claim, whether the upload succeeded (then recorded first) or failed."""
        with self._writing() as db:
            db.execute("DELETE FROM upload_claims WHERE content_hash = ?", (content_hash,))

    def forget_upload(self, content_hash: str, *, asset_id: str | None = None) -> None:
        """Forget an upload whose asset the API no longer has.

        Given `asset_id`, only that asset is forgotten: another process may have uploaded the file
        again meanwhile, and its fresh asset must not be dropped.
        """
        with self._writing() as db:
            if asset_id is None:
                db.execute("DELETE FROM uploads WHERE content_hash = ?", (content_hash,))
            else:
                db.execute(
                    "DELETE FROM uploads WHERE content_hash = ? AND asset_id = ?", (content_hash, asset_id)
                )

    # --- downloads --------------------------------------------------------------------------------

    def record_download(self, *, asset_id: str, path: str, job_id: str | None) -> None:
        """Remember where an asset was saved; the same path recorded again stays one entry."""
        with self._writing() as db:
            db.execute(
                "INSERT INTO downloads (asset_id, path, job_id, saved_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (asset_id, path) DO UPDATE SET job_id = COALESCE(excluded.job_id, job_id)",
                (asset_id, path, job_id, self._clock()),
            )

    def downloads_for_job(self, job_id: str) -> list[tuple[str, str]]:
        """(asset id, path) of every file saved for the job's outputs (by download_assets too), oldest
        first: its outputs come in their order, as they are saved one after the other."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT asset_id, path FROM downloads WHERE job_id = ? ORDER BY saved_at, download_id",
                (job_id,),
            ).fetchall()
        return [(str(row["asset_id"]), str(row["path"])) for row in rows]

    def downloads_of(self, asset_id: str) -> list[str]:
        """Every path the asset was saved to, oldest first."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT path FROM downloads WHERE asset_id = ? ORDER BY saved_at, download_id", (asset_id,)
            ).fetchall()
        return [str(row["path"]) for row in rows]
