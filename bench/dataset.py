"""A dataset at a large customer's scale, built once, copied for each bench run. Prints figures.

The benches that measure the app at scale (bench/pages.py; approve.py and load.py) share it:

    import dataset                                   # bench/ is on sys.path when a bench runs as a script
    with dataset.load(scale=1.0) as ds:              # a fresh copy of the cached dataset, its own PostgreSQL
        ds.urls.app, ds.urls.admin, ds.urls.worker   # as backoffice.embedded.start returns them
        ds.large.id, ds.large.logins["finance"]      # the large organization; a Login per role
        ds.demo.id, ds.demo.logins["contractor"]     # the demo's Acme Renovations, on the same database
        ds.large.engagement_id, ds.large.invoice_id  # one row of each kind the pages show (see Org)
        ds.large.project_id                          # an open project with its proposals
        ds.large.completion_engagement_id            # billed on completion, with approved tasks to invoice
        ds.waiting_reviews(ds.large, limit=100)      # submitted milestones waiting, with their owner's login

What is in it (bench/dataset_build.py says it all): the demo's organizations as `backoffice demo` seeds them;
"Large Customer Holdings" with 10,000 engagements (500 billed on completion), ~145,000 milestones, 20,000
submissions waiting for review with their evidence, ~110,000 authorized invoices (~97,000 in the payment queue),
50 AP export batches (20 paid), ~110,000 receipts, ~260,000 notifications and emails, 1,000,000 audit events,
2,000 projects (300 open) with 6,000 proposals; and 200 other organizations with 1,000,000 milestones between
them. Counts scale
with ``scale``. Everyone signs in through the real form: the large and other organizations' people with
PASSWORD, the demo's with its own password. The bulk rows keep the schema's rules and state machines, and the
large organization's audit trail verifies.

The cache: ~/.cache/backoffice-bench/dataset-KEY (BACKOFFICE_BENCH_CACHE names another folder), KEY a hash of
the scale, the migrations' head revision and the source of dataset.py, dataset_build.py and dataset.sql: a
change to any of them builds anew (about 4 minutes and 2.8 GB at scale 1.0 on the 2-core machine, others
working), and an unused entry can simply be deleted. Each load() copies the stopped cluster's directory and
starts its own server on the copy (2-3 s at scale 1.0), so a bench may change anything; stop() stops it and
removes the copy. (Why a copy of the directory and not a database cloned from a template: copy_cluster.)

    .venv/bin/python bench/dataset.py [--scale 1.0] [--rebuild] [--smoke]

builds the cache entry if needed, makes and starts a copy, and prints `name: value unit` lines: the build
time (this run's, or the cached entry's), the copy's, the size on disk and the row counts. --smoke is scale
0.002 (seconds: the test suite builds it).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dataset_build
import psycopg
from dataset_build import PASSWORD, stop_cluster

from backoffice import embedded, schema
from backoffice.services import demo

SMOKE_SCALE = 0.002
_SOURCES = (Path(__file__).resolve(), Path(dataset_build.__file__).resolve(), dataset_build.SQL)

__all__ = ["PASSWORD", "SMOKE_SCALE", "Dataset", "Login", "Org", "Waiting", "build", "load"]


@dataclass(frozen=True)
class Login:
    email: str
    password: str


@dataclass(frozen=True)
class Org:
    """An organization of the dataset, a login per role, and one row of each kind its pages show: an active
    engagement of the contractor login's contractor, billed per milestone, run by the owner login, with approved and
    waiting work; an open project with proposals to compare; and an active engagement of the same contractor billed
    on completion, with approved tasks it can invoice."""

    id: str
    name: str
    logins: dict[str, Login]  # admin, owner, finance, contractor
    contractor_id: str  # the contractor login's
    engagement_id: str
    milestone_id: str  # approved, with its invoice
    review_milestone_id: str  # submitted, waiting for the owner login's review
    invoice_id: str  # the contractor's, a paid one if any is
    batch_id: str | None  # the AP export batch holding invoice_id, else the newest live one
    project_id: str | None  # open, with the most proposals, one of them the contractor login's if it has any
    completion_engagement_id: str | None  # billed on completion, active, with approved tasks not yet invoiced
    completion_invoice_id: str | None  # its newest task invoice (kind completion), if any


@dataclass(frozen=True)
class Waiting:
    milestone_id: str
    submission_id: str  # its latest revision, the one a decision is about
    owner: Login  # the project owner who may decide on it


@dataclass
class Dataset:
    urls: embedded.EmbeddedUrls
    large: Org
    demo: Org
    scale: float
    counts: dict[str, int]  # of the large organization's rows, and the other organizations'
    build_seconds: float
    data_dir: Path
    temporary: bool = False  # a copy: stop() removes it
    copy_seconds: float | None = None
    _stopped: bool = field(default=False, repr=False)

    def waiting_reviews(
        self, org: Org | None = None, limit: int | None = None, billing_mode: str | None = None
    ) -> list[Waiting]:
        """Milestones of ``org`` (the large one by default) submitted and waiting for review, the longest
        waiting first, with the login of the project owner who may decide on each; only those of engagements
        billed ``billing_mode`` ("milestone", "completion") if given. Read now: a bench that decided some
        already gets the rest."""
        org = org or self.large
        password = demo.DEMO_PASSWORD if org.id == self.demo.id else PASSWORD
        with psycopg.connect(self.urls.admin) as conn:
            rows = conn.execute(
                """select m.id::text, s.id::text, u.email
                     from milestones m
                     join engagements e on e.id = m.engagement_id
                     join users u on u.id = e.owner_user_id
                     join lateral (select id, submitted_at from submissions s where s.milestone_id = m.id
                                    order by s.revision desc limit 1) s on true
                    where m.org_id = %s and m.status = 'submitted' and e.status in ('active', 'paused')
                      and e.billing_mode = coalesce(%s, e.billing_mode)
                    order by s.submitted_at, m.id
                    limit %s""",
                [org.id, billing_mode, limit],
            ).fetchall()
        return [Waiting(m, s, Login(email, password)) for m, s, email in rows]

    def stop(self) -> None:
        """Stop this dataset's PostgreSQL (and remove the copy, if it is one). Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        stop_cluster(self.data_dir)
        if self.temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def build(data_dir: Path, scale: float = 1.0) -> Dataset:
    """Build the dataset in ``data_dir`` (an embedded PostgreSQL's home, as embedded.start takes it), without
    the cache, and leave its server running: stop it with Dataset.stop(), which leaves the data in place."""
    urls, meta = dataset_build.build_into(data_dir, scale)
    return _dataset(meta, urls, data_dir)


def load(scale: float = 1.0, *, rebuild: bool = False) -> Dataset:
    """A fresh copy of the cached dataset of ``scale`` (built first if missing, or if ``rebuild``), its own
    PostgreSQL running. Stop it with Dataset.stop() or a ``with`` block: that removes the copy."""
    entry, _ = cached(scale, rebuild=rebuild)
    run_dir = Path(tempfile.mkdtemp(prefix="backoffice-bench-"))
    try:
        t0 = time.perf_counter()
        copy_cluster(entry, run_dir)
        urls = embedded.start(run_dir, stop_on_exit=True)
        meta = json.loads((entry / "dataset.json").read_text())
        return _dataset(meta, urls, run_dir, temporary=True, copy_seconds=time.perf_counter() - t0)
    except BaseException:
        stop_cluster(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _dataset(meta: dict, urls: embedded.EmbeddedUrls, data_dir: Path, **extra) -> Dataset:
    def org(fields: dict) -> Org:
        return Org(**{**fields, "logins": {role: Login(**login) for role, login in fields["logins"].items()}})

    large, demo_org = org(meta["large"]), org(meta["demo"])
    return Dataset(urls, large, demo_org, meta["scale"], meta["counts"], meta["build_seconds"], data_dir, **extra)


# --- the cache and its copies -----------------------------------------------------------------------------


def cache_root() -> Path:
    return Path(os.environ.get("BACKOFFICE_BENCH_CACHE") or "~/.cache/backoffice-bench").expanduser().resolve()


def cache_key(scale: float) -> str:
    digest = hashlib.sha256(f"scale={scale!r}\nheads={','.join(sorted(schema.head_revisions()))}\n".encode())
    for source in _SOURCES:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


@contextmanager
def _locked(path: Path):
    """One builder at a time per cache entry, across processes (another bench may be building it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached(scale: float = 1.0, *, rebuild: bool = False) -> tuple[Path, bool]:
    """The cache entry of ``scale``, built first if missing (or ``rebuild``): (its directory, built now)."""
    root = cache_root()
    entry = root / f"dataset-{cache_key(scale)}"
    with _locked(root / f"{entry.name}.lock"):
        if rebuild and entry.exists():
            shutil.rmtree(entry)
        if (entry / "dataset.json").exists():
            return entry, False
        dataset_build.log(f"building {entry} (scale {scale}); later runs copy it")
        staging = Path(tempfile.mkdtemp(prefix=f"{entry.name}.building-", dir=root))
        try:
            build(staging, scale).stop()
            staging.rename(entry)  # whole or not at all: a failed build leaves no entry
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return entry, True


def ensure_cached(scale: float, *, rebuild: bool = False) -> None:
    """Build the cache entry of ``scale`` if it is missing (or anew with ``rebuild``), printing how long that
    took as a bench's `dataset_build` line: what every bench that loads the dataset does first."""
    t0 = time.perf_counter()
    entry, built = cached(scale, rebuild=rebuild)
    if built:
        print(f"dataset_build: {time.perf_counter() - t0:.1f} s (cached in {entry})")


def copy_cluster(source: Path, target: Path) -> None:
    """Copy a stopped cluster's directory (and its dataset.json) into ``target``, owners and modes kept (run by
    root, the embedded server runs as a system user of its own).

    Measured at scale 1.0 (2.6 GB) on the 2-core machine, the files in the page cache: this copy and a start
    take 2.0-2.5 s (7.7 s the first time); CREATE DATABASE ... TEMPLATE ... STRATEGY FILE_COPY in the cached
    cluster left running takes 1.3 s (2.2 s), and 0.7 s more to drop it. The second is a second faster and
    is not taken: it runs every bench on one shared server in the cache, whose files then change under it;
    it fails while anyone is connected to the template (embedded.start connects to it to grant, so two runs
    starting at once collide); and a run that dies leaves its 2.4 GB database inside the cache. A copy of
    the directory is its run's alone, and the cache stays as built."""
    subprocess.run(["cp", "-a", str(source / "pgdata"), str(target / "pgdata")], check=True)
    shutil.copy2(source / "dataset.json", target / "dataset.json")


def size_on_disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--rebuild", action="store_true", help="build the cache entry anew")
    ap.add_argument("--smoke", action="store_true", help=f"scale {SMOKE_SCALE}: seconds, for the test suite")
    args = ap.parse_args()
    scale = SMOKE_SCALE if args.smoke else args.scale
    entry, built = cached(scale, rebuild=args.rebuild)
    with load(scale) as ds:
        with psycopg.connect(ds.urls.app) as conn:
            conn.execute("select 1")  # the copy answers, as the app role
        print(f"scale: {scale}")
        print(f"build: {ds.build_seconds:.1f} s" + ("" if built else " (the cached entry's)"))
        print(f"copy: {ds.copy_seconds:.1f} s (a fresh copy, started)")
        print(f"size: {size_on_disk(entry) / 1e6:.0f} MB ({entry})")
        for name, value in ds.counts.items():
            print(f"{name}: {value}")


if __name__ == "__main__":
    main()
