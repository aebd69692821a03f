"""A small labelled set for measuring how well ``Memory.recall`` ranks.

135 memories of one made-up software team (a billing service: Postgres,
background jobs, Stripe, a dashboard frontend, CI, on-call), of all four types
(42 decisions, six of them superseded, 31 insights, 45 observations, 17
stories), each with an age in days, and 49 queries, each labelled by hand with
the entries that answer it. The labels say what a teammate would want back, not
what BM25 happens to find: some queries are paraphrases that share only a word
or two with their answers, and those are meant to be hard.

The hard cases are marked by the query's ``kind``:

- ``direct``: the query uses the entry's own words;
- ``paraphrase``: the query says it differently and shares only some words;
- ``distractor``: other entries share the query's words but do not answer it;
- ``superseded``: a decision was replaced; only the replacement is relevant and
  the old one must never be recalled;
- ``story``: a story matches the query's words well but stories never drive
  recall; the relevant entry is a decision, insight or observation;
- ``recency``: two observations of (nearly) equal relevance, one old and one
  fresh; both are relevant and the fresh one should rank first (``fresher``).

``load`` writes the set through ``Memory.remember`` (so supersession and
observation reinforcement go through the real write path) with a ``FakeClock``
moved to each entry's age; ``evaluate`` runs every query and computes recall@5,
recall@10 (the share of a query's relevant entries in the top k, averaged over
queries) and MRR (the mean of 1/rank of the first relevant entry in the top 10).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from accord.config import MemoryConfig
from accord.memory import Memory
from accord.store.base import Store
from accord.testing import FakeClock
from accord.types import MemoryType, NewMemory

DAY = 86400.0
TEAM = "recall"

D = MemoryType.DECISION
I = MemoryType.INSIGHT  # noqa: E741
O = MemoryType.OBSERVATION  # noqa: E741
S = MemoryType.STORY


@dataclass(frozen=True, slots=True)
class Entry:
    """One labelled memory: a stable key, its type, text, age and links."""

    key: str
    type: MemoryType
    age_days: float
    text: str
    tags: tuple[str, ...] = ()
    supersedes: str | None = None
    # days ago at which the same observation was noted again (reinforcement)
    again: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Query:
    """A query and the keys of the entries that answer it."""

    text: str
    relevant: tuple[str, ...]
    kind: str = "direct"
    # entries that must never be in the results (superseded decisions, stories)
    never: tuple[str, ...] = ()
    # for ``recency``: (fresh, old) pairs of keys; fresh should rank above old
    fresher: tuple[tuple[str, str], ...] = ()
    # for ``distractor``: entries sharing the query's words that every relevant one must beat
    distractors: tuple[str, ...] = ()


ENTRIES: tuple[Entry, ...] = (
    # database ------------------------------------------------------------------------------
    Entry(
        "db-pg",
        D,
        300,
        "Use PostgreSQL 15 as the primary database for the billing service; SQLite only in "
        "unit tests.",
        ("database",),
    ),
    Entry(
        "db-pg16",
        D,
        60,
        "Upgrade the primary database to PostgreSQL 16 for logical replication; the billing "
        "service moves in the March maintenance window.",
        ("database",),
        supersedes="db-pg",
    ),
    Entry(
        "db-migr",
        I,
        200,
        "Write every schema migration so it can run while the old code is still serving: add "
        "columns nullable first, backfill, then add the constraint in a later release.",
        ("database",),
    ),
    Entry(
        "db-locks",
        O,
        120,
        "A long-running migration on the invoices table took an ACCESS EXCLUSIVE lock and "
        "stalled checkout for 40 seconds.",
        ("database",),
    ),
    Entry(
        "db-pool",
        O,
        10,
        "Connection pool exhaustion ('QueuePool limit of size 20 overflow 10 reached') shows up "
        "in the API logs during the Monday morning invoice run.",
        ("database",),
        again=(6, 3),
    ),
    Entry(
        "db-story",
        S,
        400,
        "The week we migrated from MySQL, Priya stayed up two nights rewriting the reporting "
        "queries by hand; the team still jokes about the 'MySQL funeral'.",
    ),
    Entry(
        "db-backup-old",
        O,
        90,
        "The nightly backup of the reporting database finished late on Sunday.",
    ),
    Entry(
        "db-backup-new",
        O,
        2,
        "The nightly backup of the reporting database finished late on Thursday.",
    ),
    # background jobs -----------------------------------------------------------------------
    Entry(
        "q-celery",
        D,
        350,
        "Background jobs run on Celery with RabbitMQ as the message broker.",
        ("jobs",),
    ),
    Entry(
        "q-redis",
        D,
        150,
        "Move the Celery broker from RabbitMQ to Redis Streams to run one less piece of "
        "infrastructure.",
        ("jobs",),
        supersedes="q-celery",
    ),
    Entry(
        "q-dramatiq",
        D,
        20,
        "Replace Celery with Dramatiq on Redis for background jobs; Celery's retry semantics "
        "kept double-sending invoice emails.",
        ("jobs",),
        supersedes="q-redis",
    ),
    Entry(
        "q-dup",
        O,
        40,
        "Invoice emails were sent twice when a worker was killed after sending but before "
        "acknowledging the job.",
        ("jobs",),
        again=(30,),
    ),
    Entry(
        "q-idem",
        I,
        35,
        "Make every background job idempotent: key side effects such as emails and charges on a "
        "stable id and check it before acting.",
        ("jobs",),
    ),
    Entry(
        "q-jobtitle",
        O,
        29,
        "The job title field on the profile form accepts 200 characters but the PDF header cuts "
        "it at 60.",
    ),
    # caching -------------------------------------------------------------------------------
    Entry(
        "cache-redis",
        D,
        90,
        "Cache user profile responses in Redis for five minutes and invalidate the key on "
        "PATCH /users/{id}.",
        ("cache",),
    ),
    Entry(
        "cache-stale",
        O,
        25,
        "Users saw their old plan name for up to five minutes after upgrading, because the "
        "profile cache was not invalidated on a plan change.",
        ("cache",),
    ),
    Entry(
        "cache-ci",
        O,
        15,
        "The CI cache for pip wheels saves about three minutes per pipeline run when the lock "
        "file is unchanged.",
        ("ci",),
    ),
    Entry(
        "cache-rule",
        I,
        24,
        "Every cache we add needs a named owner and a written invalidation rule in the PR "
        "description, or it is sent back in review.",
        ("cache",),
    ),
    Entry(
        "perf-pyspy",
        I,
        140,
        "Profile the API with py-spy before optimising: our guesses about the slow part were "
        "wrong twice.",
    ),
    Entry(
        "fe-avatar",
        S,
        100,
        "The user profile page redesign shipped together with avatar upload, and the design "
        "team sent cupcakes.",
    ),
    # auth ----------------------------------------------------------------------------------
    Entry(
        "auth-jwt",
        D,
        250,
        "API authentication uses short-lived JWT access tokens (15 minutes) with rotating "
        "refresh tokens stored server-side.",
        ("auth",),
    ),
    Entry(
        "auth-sso",
        D,
        70,
        "Enterprise customers sign in through SAML SSO with their identity provider; password "
        "login stays for self-serve plans.",
        ("auth",),
    ),
    Entry(
        "auth-clock",
        O,
        50,
        "Token validation fails intermittently on one worker node whose clock drifts by over a "
        "minute; NTP was disabled on that image.",
        ("auth",),
    ),
    Entry(
        "auth-story",
        S,
        75,
        "Our first SSO customer, a hospital group, was onboarded over a six-hour weekend call "
        "with their IT team; SSO onboarding for that customer took all of Sunday.",
    ),
    # API -----------------------------------------------------------------------------------
    Entry(
        "api-ver",
        D,
        220,
        "Version the public API in the URL path (/v1/, /v2/); breaking changes only in a new "
        "major version, with six months of overlap.",
        ("api",),
    ),
    Entry(
        "api-deprec",
        I,
        100,
        "Announce deprecations in the changelog and with a Sunset header at least two releases "
        "before an endpoint is removed.",
        ("api",),
    ),
    Entry(
        "api-clients",
        O,
        14,
        "About a third of API traffic still hits /v1/invoices although /v2 has been out for four "
        "months.",
        ("api",),
    ),
    # logging and observability ------------------------------------------------------------
    Entry(
        "log-json",
        D,
        280,
        "All services log structured JSON to stdout; no log files on disk, the collector ships "
        "them.",
        ("logging",),
    ),
    Entry(
        "log-otel",
        D,
        130,
        "Use OpenTelemetry for traces and metrics, exported to the collector; the StatsD client "
        "is dropped.",
        ("observability",),
    ),
    Entry(
        "log-pii-obs",
        O,
        45,
        "Customer email addresses were found in the request logs of the signup endpoint.",
        ("logging", "privacy"),
    ),
    Entry(
        "log-pii-ins",
        I,
        44,
        "Never log request bodies: log ids, and redact anything that can identify a person "
        "before it leaves the process.",
        ("logging", "privacy"),
    ),
    Entry(
        "log-volume",
        O,
        5,
        "Log volume doubled after debug logging was left on in the payments worker; the "
        "logging bill went up 30% that month.",
        ("logging",),
    ),
    Entry(
        "log-search",
        I,
        66,
        "Search the logs with the collector's query language, not grep on pods: pods are gone "
        "by the time you look.",
        ("logging",),
    ),
    # on-call and alerts -------------------------------------------------------------------
    Entry(
        "oncall-rot",
        D,
        180,
        "On-call rotates weekly between backend engineers; handover on Monday at 10:00 with a "
        "written summary.",
        ("oncall",),
    ),
    Entry(
        "alert-fatigue",
        I,
        160,
        "Only page on symptoms users feel (error rate, latency, failed payments); causes such as "
        "high CPU go on a dashboard, not the pager.",
        ("oncall",),
    ),
    Entry(
        "alert-noise-new",
        O,
        8,
        "The disk space alert on the build agents fired 23 times last week and nobody acted on "
        "any of them.",
        ("oncall",),
    ),
    Entry(
        "alert-noise-old",
        O,
        95,
        "The disk space alert on the database replicas fired 19 times in one week and was "
        "ignored every time.",
        ("oncall",),
    ),
    Entry(
        "oncall-story",
        S,
        200,
        "During the Black Friday on-call shift the pager went off 40 times; Marco kept a tally "
        "on the whiteboard and bought everyone pizza afterwards.",
    ),
    Entry(
        "rel-notes",
        D,
        115,
        "Release notes are written by the engineer on call that week, from the merged PR titles.",
    ),
    # CI ------------------------------------------------------------------------------------
    Entry(
        "ci-gha", D, 260, "CI runs on GitHub Actions; the Jenkins server is switched off.", ("ci",)
    ),
    Entry(
        "ci-slow",
        O,
        30,
        "The full CI pipeline takes 28 minutes, most of it the end-to-end browser tests.",
        ("ci",),
        again=(21, 12, 4),
    ),
    Entry(
        "ci-split",
        I,
        28,
        "Run unit tests on every push and the slow end-to-end suite only in the merge queue, so "
        "developers wait less for feedback.",
        ("ci",),
    ),
    Entry(
        "ci-flaky-old",
        O,
        75,
        "Flaky test: test_refund_webhook failed on CI runner 4.",
        ("ci",),
    ),
    Entry(
        "ci-flaky-new",
        O,
        3,
        "Flaky test: test_refund_webhook failed on CI runner 9.",
        ("ci",),
    ),
    Entry(
        "ci-merge-queue",
        D,
        120,
        "Merges to main go through the merge queue; nobody pushes directly to main.",
        ("ci",),
    ),
    Entry(
        "ci-story",
        S,
        250,
        "When the Jenkins server finally died, Tomas printed its last build log and framed it.",
    ),
    # releases ------------------------------------------------------------------------------
    Entry(
        "rel-weekly",
        D,
        240,
        "Release to production every Tuesday after the staging smoke tests pass.",
        ("release",),
    ),
    Entry(
        "rel-cd",
        D,
        40,
        "Deploy to production continuously from main behind feature flags; the Tuesday release "
        "train ends.",
        ("release",),
        supersedes="rel-weekly",
    ),
    Entry(
        "rel-rollback",
        I,
        110,
        "Every deploy must be rollbackable in one command; a migration that cannot be reversed "
        "ships in its own release first.",
        ("release",),
    ),
    Entry(
        "rel-story",
        S,
        38,
        "The first continuous deploy went to production at 4pm on a Friday by accident and, to "
        "everyone's surprise, nothing broke.",
    ),
    # feature flags -------------------------------------------------------------------------
    Entry(
        "ff-tool",
        D,
        100,
        "Feature flags live in the self-hosted Unleash server; no flags in environment variables.",
        ("flags",),
    ),
    Entry(
        "ff-cleanup",
        I,
        60,
        "Remove a feature flag within two weeks of full rollout; a forgotten flag caused the "
        "March pricing bug.",
        ("flags",),
    ),
    Entry(
        "ff-stale",
        O,
        12,
        "There are 64 feature flags in Unleash and 41 of them have been at 100% for more than a "
        "month.",
        ("flags",),
    ),
    # code review ---------------------------------------------------------------------------
    Entry(
        "cr-size",
        D,
        190,
        "Pull requests over 400 changed lines need a written reason, or get split before review.",
        ("review",),
    ),
    Entry(
        "cr-fast",
        I,
        170,
        "Review within four working hours: a PR left waiting a day costs more than the review "
        "itself.",
        ("review",),
    ),
    Entry(
        "cr-wait",
        O,
        6,
        "Median time from PR opened to first review was 19 hours in the last sprint.",
        ("review",),
    ),
    Entry(
        "cr-dana",
        I,
        80,
        "Dana reviews best with a short summary of intent at the top of the PR, and screenshots "
        "for UI changes.",
        ("review",),
    ),
    Entry(
        "cr-story",
        S,
        300,
        "Elif once left 112 review comments on a single PR; it is still known as 'the great "
        "review'.",
    ),
    # dependencies --------------------------------------------------------------------------
    Entry(
        "dep-lock",
        D,
        140,
        "Pin all Python dependencies with uv lock files; Renovate opens upgrade PRs weekly.",
        ("dependencies",),
    ),
    Entry(
        "dep-break",
        O,
        33,
        "A minor release of the PDF library changed page margins and broke the invoice layout "
        "snapshots.",
        ("dependencies",),
    ),
    Entry(
        "dep-snap",
        I,
        32,
        "Upgrade rendering libraries one at a time and review snapshot diffs by eye; never "
        "bulk-accept snapshot updates.",
        ("dependencies",),
    ),
    # frontend ------------------------------------------------------------------------------
    Entry(
        "fe-vite",
        D,
        160,
        "Build the dashboard frontend with Vite; the webpack config is removed.",
        ("frontend",),
    ),
    Entry("fe-ts", D, 210, "All new frontend code is TypeScript in strict mode.", ("frontend",)),
    Entry(
        "fe-bundle",
        O,
        18,
        "The dashboard JavaScript bundle grew to 2.4 MB after the charting library was added.",
        ("frontend",),
    ),
    Entry(
        "fe-lazy",
        I,
        16,
        "Load heavy charting and PDF preview components lazily, only on the routes that use them.",
        ("frontend",),
    ),
    Entry(
        "fe-i18n",
        O,
        52,
        "The word 'invoice' is translated inconsistently in the German UI (Rechnung and Faktura).",
        ("frontend",),
    ),
    # payments ------------------------------------------------------------------------------
    Entry(
        "pay-stripe",
        D,
        330,
        "Payments go through Stripe; card data never touches our servers (Stripe Elements on the "
        "client).",
        ("payments",),
    ),
    Entry(
        "pay-webhook",
        D,
        210,
        "Stripe webhooks are verified by signature and handled by a queue consumer, never inline "
        "in the HTTP handler.",
        ("payments",),
    ),
    Entry(
        "pay-webhook-late",
        O,
        55,
        "Stripe webhook deliveries arrive out of order during retries: a refund event arrived "
        "before its charge event.",
        ("payments",),
    ),
    Entry(
        "pay-order",
        I,
        54,
        "Handle payment events by fetching the object's current state from Stripe instead of "
        "trusting the order events come in.",
        ("payments",),
    ),
    Entry(
        "pay-story",
        S,
        130,
        "The day Stripe had an outage, support answered 300 tickets and Sam wrote a status page "
        "by hand in a shared doc.",
    ),
    # money ---------------------------------------------------------------------------------
    Entry(
        "money-int",
        D,
        340,
        "Store money as integer minor units (cents) with an ISO currency code; no floats "
        "anywhere in billing.",
        ("billing",),
    ),
    Entry(
        "money-round-obs",
        O,
        65,
        "Tax was off by one cent on invoices with many lines, because each line was rounded "
        "before summing.",
        ("billing",),
    ),
    Entry(
        "money-round-ins",
        I,
        64,
        "Round tax once on the invoice total, not per line, and write down the rule for each "
        "country.",
        ("billing",),
    ),
    # time zones ----------------------------------------------------------------------------
    Entry(
        "tz-utc",
        D,
        290,
        "Store all timestamps in UTC; convert to the customer's time zone only for display and "
        "invoice dates.",
    ),
    Entry(
        "tz-dst",
        O,
        110,
        "Invoices dated the day of the DST change were generated twice for customers in Sydney.",
    ),
    Entry(
        "tz-test",
        I,
        108,
        "Test every date calculation with a fake clock across a daylight saving change and the "
        "end of a month.",
    ),
    # email ---------------------------------------------------------------------------------
    Entry(
        "email-provider",
        D,
        230,
        "Transactional email goes through Postmark; marketing email uses a separate account so "
        "bounces do not mix.",
        ("email",),
    ),
    Entry(
        "email-bounce",
        O,
        22,
        "The bounce rate of invoice emails rose to 4% after the sending domain lost its DMARC "
        "record.",
        ("email",),
    ),
    # search --------------------------------------------------------------------------------
    Entry(
        "search-pg",
        D,
        170,
        "Customer search uses Postgres full-text search with trigram indexes; no Elasticsearch "
        "cluster.",
        ("search",),
    ),
    Entry(
        "search-slow",
        O,
        9,
        "Looking up customers by partial email takes over two seconds for accounts with more "
        "than 100,000 customers.",
        ("search",),
    ),
    # rate limiting -------------------------------------------------------------------------
    Entry(
        "rl",
        D,
        150,
        "Rate limit the public API per API key with a token bucket in Redis: 100 requests per "
        "second, burst 200.",
        ("api",),
    ),
    Entry(
        "rl-429",
        O,
        27,
        "A large customer's nightly sync hit the rate limit and retried without backoff, "
        "producing 2 million 429 responses.",
        ("api",),
    ),
    # security ------------------------------------------------------------------------------
    Entry(
        "sec-vault",
        D,
        200,
        "Secrets live in Vault and are injected at deploy time; none in the repository or in CI "
        "variables.",
        ("security",),
    ),
    Entry(
        "sec-leak",
        O,
        48,
        "An AWS access key was committed to a feature branch and caught by the secret scanner "
        "within ten minutes.",
        ("security",),
    ),
    Entry(
        "sec-rotate",
        I,
        47,
        "Rotate any secret that touched a commit, even on a branch that was never merged.",
        ("security",),
    ),
    # testing -------------------------------------------------------------------------------
    Entry(
        "test-contract",
        I,
        90,
        "Contract tests against the Stripe and Postmark fakes caught more regressions than the "
        "end-to-end suite; write those first.",
        ("testing",),
    ),
    Entry(
        "test-coverage",
        D,
        185,
        "No coverage percentage gate; each PR must add tests for the behaviour it changes.",
        ("testing",),
    ),
    Entry(
        "test-fixture",
        O,
        36,
        "Tests share a database fixture that leaks rows from one test to the next, so a "
        "different run order makes them fail.",
        ("testing",),
    ),
    # privacy -------------------------------------------------------------------------------
    Entry(
        "gdpr-delete",
        D,
        175,
        "Delete a customer's personal data within 30 days of account closure; invoices are kept "
        "for 10 years with the person's name only.",
        ("privacy",),
    ),
    Entry(
        "gdpr-backup",
        O,
        26,
        "Deleted customers' data stayed in database backups for 90 days, longer than the "
        "retention policy allows.",
        ("privacy",),
    ),
    # infrastructure ------------------------------------------------------------------------
    Entry(
        "infra-k8s",
        D,
        310,
        "Run services on the managed Kubernetes cluster, with one namespace per environment.",
        ("infra",),
    ),
    Entry(
        "infra-clusters",
        D,
        85,
        "Staging and production get separate Kubernetes clusters, after a staging load test "
        "took down the production ingress.",
        ("infra",),
        supersedes="infra-k8s",
    ),
    Entry(
        "infra-oom",
        O,
        13,
        "The PDF rendering pods are OOM-killed when a customer exports more than 500 invoices at "
        "once.",
        ("infra",),
    ),
    Entry(
        "infra-limits",
        I,
        11,
        "Set memory limits from measured peak usage plus 30%, and load-test exports with the "
        "largest customer's data.",
        ("infra",),
    ),
    Entry(
        "infra-story",
        S,
        84,
        "The staging load test that took down production ingress happened during a sales demo; "
        "Lena talked through it for twenty minutes.",
    ),
    # Python runtime ------------------------------------------------------------------------
    Entry(
        "py-311",
        D,
        95,
        "Services run on CPython 3.11; move to 3.12 once the PDF library supports it.",
        ("python",),
    ),
    Entry(
        "py-312",
        D,
        15,
        "Services move to CPython 3.12 now that the PDF library ships wheels for it; 3.11 images "
        "are retired by June.",
        ("python",),
        supersedes="py-311",
    ),
    # how the team works --------------------------------------------------------------------
    Entry(
        "team-standup",
        I,
        150,
        "An async standup in the team channel before 10:00 works better than a daily meeting; we "
        "only meet on Mondays.",
        ("team",),
    ),
    Entry(
        "team-priya",
        I,
        70,
        "Priya prefers design questions in writing a day ahead rather than in a call.",
        ("team",),
    ),
    Entry(
        "team-handoff",
        O,
        19,
        "Work handed over between time zones stalls when the handover note does not name the "
        "next step.",
        ("team",),
    ),
    Entry(
        "team-offsite",
        S,
        220,
        "At the Lisbon offsite the team drew the whole billing architecture on a restaurant "
        "tablecloth, which now hangs in the office.",
    ),
    Entry(
        "team-sam",
        I,
        58,
        "Sam wants to be asked before anyone changes the invoice PDF templates; he owns the "
        "relationship with the accounting customers.",
        ("team",),
    ),
    # docs ----------------------------------------------------------------------------------
    Entry(
        "doc-adr",
        D,
        265,
        "Record architecture decisions as ADRs in docs/adr, one numbered markdown file each.",
        ("docs",),
    ),
    Entry(
        "doc-stale",
        O,
        7,
        "The onboarding guide still tells new developers to install RabbitMQ.",
        ("docs",),
    ),
    Entry(
        "doc-story",
        S,
        45,
        "Our newest developer found the onboarding guide so out of date that she rewrote it in "
        "her first week and wrote a blog post about it.",
    ),
    # performance ---------------------------------------------------------------------------
    Entry(
        "perf-n1-obs",
        O,
        58,
        "The invoice list endpoint ran one SQL query per line item (N+1) and took 3 seconds for "
        "large accounts.",
        ("performance",),
    ),
    Entry(
        "perf-n1-ins",
        I,
        57,
        "Assert the number of SQL queries in tests of list endpoints, so an N+1 is caught before "
        "review.",
        ("performance",),
    ),
    Entry(
        "perf-budget",
        D,
        125,
        "The p95 latency budget for API endpoints is 300 ms; an endpoint over budget gets a "
        "ticket.",
        ("performance",),
    ),
    # more observations and stories (context, noise) ----------------------------------------
    Entry(
        "obs-signup",
        O,
        17,
        "Signups from the pricing page dropped by a fifth after the new plan comparison table "
        "went live.",
    ),
    Entry(
        "obs-export-csv",
        O,
        39,
        "Customers export invoices to CSV mostly at month end, between the 28th and the 2nd.",
    ),
    Entry(
        "obs-support",
        O,
        21,
        "Most support tickets this month were about VAT numbers being rejected for EU customers.",
    ),
    Entry(
        "ins-vat",
        I,
        20,
        "Validate VAT numbers against VIES asynchronously and let the customer continue; block "
        "only at invoice time.",
        ("billing",),
    ),
    Entry(
        "obs-staging-data",
        O,
        42,
        "Staging data is six months old, so bugs that need recent plan types cannot be "
        "reproduced there.",
    ),
    Entry(
        "ins-staging-seed",
        I,
        41,
        "Refresh staging from an anonymised production snapshot every Monday.",
    ),
    Entry(
        "dec-monorepo",
        D,
        270,
        "Keep backend, frontend and infrastructure in one repository; each has its own CI "
        "workflow.",
    ),
    Entry(
        "dec-openapi",
        D,
        145,
        "The OpenAPI spec is generated from the code and checked in; the client SDK is built "
        "from it on release.",
        ("api",),
    ),
    Entry(
        "obs-sdk",
        O,
        31,
        "The generated TypeScript SDK broke twice when an enum gained a value; clients failed on "
        "unknown values.",
        ("api",),
    ),
    Entry(
        "ins-enum",
        I,
        30,
        "Treat enums in API responses as open: clients must accept values they do not know.",
        ("api",),
    ),
    Entry(
        "story-pizza",
        S,
        60,
        "The team celebrated the thousandth paying customer with pizza and a dashboard "
        "screenshot on the office screen.",
    ),
    Entry(
        "story-hire",
        S,
        35,
        "Noor joined from the support team and in her first month found the VAT bug that "
        "support had been reporting for a year.",
    ),
    Entry(
        "story-outage",
        S,
        160,
        "The longest outage so far lasted 47 minutes: a Redis failover left workers pointing at "
        "the old primary.",
    ),
    Entry(
        "obs-redis-failover",
        O,
        159,
        "After a Redis failover the workers kept talking to the old primary until restarted.",
        ("infra",),
    ),
    Entry(
        "ins-redis-sentinel",
        I,
        155,
        "Connect workers to Redis through Sentinel so a failover is followed without a restart.",
        ("infra",),
    ),
    Entry(
        "story-naming",
        S,
        380,
        "The product was almost called Tally; the domain name was taken, so it became the "
        "billing service everyone now just calls 'billing'.",
    ),
    Entry(
        "obs-migration-time",
        O,
        70,
        "Schema migrations on the events table take over ten minutes since it passed 200 "
        "million rows.",
        ("database",),
    ),
    Entry(
        "dec-events-partition",
        D,
        68,
        "Partition the events table by month and drop partitions older than two years.",
        ("database",),
    ),
    Entry(
        "obs-dashboard-load",
        O,
        4,
        "The dashboard home page takes 4 seconds to load for accounts with many invoices.",
        ("frontend", "performance"),
    ),
    Entry(
        "dec-pdf-service",
        D,
        80,
        "Render invoice PDFs in a separate service with its own queue, so exports cannot slow "
        "down the API.",
        ("infra",),
    ),
    Entry(
        "ins-pair",
        I,
        125,
        "Pair on anything touching payments; two people catch the edge cases one misses.",
        ("payments", "team"),
    ),
    Entry(
        "obs-refunds",
        O,
        46,
        "Partial refunds on invoices with discounts produce a negative tax line.",
        ("billing",),
    ),
    Entry(
        "story-first-invoice",
        S,
        420,
        "The first invoice the service ever sent had the customer's name spelled wrong; the "
        "customer framed it.",
    ),
    Entry(
        "obs-timeouts",
        O,
        23,
        "Requests to the tax rates provider time out about once an hour at peak.",
    ),
    Entry(
        "ins-timeouts",
        I,
        22,
        "Give every outbound HTTP call an explicit timeout and a circuit breaker; the default "
        "is to wait forever.",
    ),
    Entry(
        "story-retro",
        S,
        90,
        "The retro after the double-sent invoice emails was the longest the team has had: "
        "three hours and two whiteboards.",
    ),
)


QUERIES: tuple[Query, ...] = (
    # superseded decisions: only the standing one answers, the old ones never appear
    Query(
        "which database do we use for the billing service",
        ("db-pg16",),
        "superseded",
        never=("db-pg",),
    ),
    Query(
        "what runs our background jobs",
        ("q-dramatiq",),
        "superseded",
        never=("q-celery", "q-redis"),
    ),
    Query(
        "which message broker do we use",
        ("q-dramatiq",),
        "superseded",
        never=("q-celery", "q-redis"),
    ),
    Query(
        "when do we release to production",
        ("rel-cd",),
        "superseded",
        never=("rel-weekly",),
    ),
    Query(
        "are staging and production in the same Kubernetes cluster",
        ("infra-clusters",),
        "superseded",
        never=("infra-k8s",),
    ),
    Query(
        "which Python version do the services run on",
        ("py-312",),
        "superseded",
        never=("py-311",),
    ),
    # direct: the query uses the entry's words
    Query("invoice emails sent twice", ("q-dup", "q-idem", "q-dramatiq")),
    Query("how long do access tokens last", ("auth-jwt",)),
    Query("how do we version the public API", ("api-ver", "api-deprec")),
    Query("stale feature flags cleanup", ("ff-cleanup", "ff-stale", "ff-tool")),
    Query("Stripe webhook events out of order", ("pay-webhook-late", "pay-order", "pay-webhook")),
    Query("how do we store money amounts", ("money-int",)),
    Query("tax rounding off by one cent", ("money-round-obs", "money-round-ins")),
    Query("customer search is slow", ("search-slow", "search-pg")),
    Query("secret committed to a branch", ("sec-leak", "sec-rotate")),
    Query("PDF rendering pods OOM-killed on large exports", ("infra-oom", "infra-limits")),
    Query("where are architecture decisions recorded", ("doc-adr",)),
    Query("invoice list endpoint N+1 SQL queries", ("perf-n1-obs", "perf-n1-ins")),
    Query("p95 latency budget for API endpoints", ("perf-budget",)),
    Query("can I push directly to main", ("ci-merge-queue",)),
    Query("log bill went up", ("log-volume",)),
    Query("Redis failover workers", ("obs-redis-failover", "ins-redis-sentinel")),
    # paraphrases: only some words shared
    Query(
        "how to change the schema without downtime",
        ("db-migr", "rel-rollback", "db-locks"),
        "paraphrase",
    ),
    Query("login fails randomly on one server", ("auth-clock",), "paraphrase"),
    Query(
        "personal information leaking into logs",
        ("log-pii-obs", "log-pii-ins"),
        "paraphrase",
    ),
    Query("what should wake up the on-call engineer", ("alert-fatigue",), "paraphrase"),
    Query("why does CI take so long", ("ci-slow", "ci-split", "cache-ci"), "paraphrase"),
    Query("how big may a pull request be", ("cr-size",), "paraphrase"),
    Query("reviews are taking too long", ("cr-fast", "cr-wait"), "paraphrase"),
    Query(
        "bumping the PDF library broke our invoice layout",
        ("dep-break", "dep-snap"),
        "paraphrase",
    ),
    Query("frontend JavaScript too big", ("fe-bundle", "fe-lazy"), "paraphrase"),
    Query("daylight saving time bugs", ("tz-dst", "tz-test"), "paraphrase"),
    Query("which service sends our transactional emails", ("email-provider",), "paraphrase"),
    Query(
        "client hammering us with retries after 429",
        ("rl-429", "rl"),
        "paraphrase",
    ),
    Query("tests fail depending on run order", ("test-fixture",), "paraphrase"),
    Query(
        "how long do we keep data after an account is closed",
        ("gdpr-delete", "gdpr-backup"),
        "paraphrase",
    ),
    Query("make jobs safe to run twice", ("q-idem", "q-dup"), "paraphrase"),
    # distractors: other entries share the words but do not answer
    Query(
        "user profile cache invalidation",
        ("cache-redis", "cache-stale", "cache-rule"),
        "distractor",
        distractors=("cache-ci", "perf-pyspy", "q-jobtitle"),
    ),
    Query(
        "job retries double-sending",
        ("q-dramatiq", "q-dup"),
        "distractor",
        distractors=("q-jobtitle", "rl-429"),
    ),
    Query(
        "how should I present a PR to Dana",
        ("cr-dana",),
        "distractor",
        distractors=("cache-rule", "test-coverage", "cr-wait"),
    ),
    Query(
        "how does Priya like to be asked questions",
        ("team-priya",),
        "distractor",
        never=("db-story",),
        distractors=("team-sam",),
    ),
    Query(
        "handing over work across time zones",
        ("team-handoff",),
        "distractor",
        distractors=("tz-utc", "oncall-rot"),
    ),
    # stories match the words well; they must never be recalled
    Query(
        "onboarding an SSO customer",
        ("auth-sso",),
        "story",
        never=("auth-story",),
    ),
    Query("first continuous deploy to production", ("rel-cd",), "story", never=("rel-story",)),
    Query(
        "onboarding guide for new developers",
        ("doc-stale",),
        "story",
        never=("doc-story",),
    ),
    Query(
        "staging load test took down production ingress",
        ("infra-clusters",),
        "story",
        never=("infra-story",),
    ),
    # recency: equal relevance, the fresh observation first
    Query(
        "nightly backup finished late",
        ("db-backup-new", "db-backup-old"),
        "recency",
        fresher=(("db-backup-new", "db-backup-old"),),
    ),
    Query(
        "flaky test_refund_webhook on CI",
        ("ci-flaky-new", "ci-flaky-old"),
        "recency",
        fresher=(("ci-flaky-new", "ci-flaky-old"),),
    ),
    Query(
        "disk space alert fired and was ignored",
        ("alert-noise-new", "alert-noise-old"),
        "recency",
        fresher=(("alert-noise-new", "alert-noise-old"),),
    ),
)


# loading -------------------------------------------------------------------------------


def load(
    memory: Memory,
    clock: FakeClock,
    entries: Sequence[Entry] = ENTRIES,
) -> dict[str, int]:
    """Write ``entries`` through ``memory.remember``, each at its age; return key -> id.

    ``clock`` must be the clock of both the store and ``memory``. It is moved
    forward to each entry's moment (oldest first) and left at "now", the moment
    the ages are counted back from. Raises ``ValueError`` if the set is not
    self-consistent: a duplicate key, a link to an unknown or younger entry, or
    two different observations merging because they are too similar.
    """
    keys = {e.key for e in entries}
    if len(keys) != len(entries):
        raise ValueError("duplicate keys in the labelled set")
    by_key = {e.key: e for e in entries}
    events: list[tuple[float, int, Entry]] = []  # (days ago, 0 = create / 1 = again, entry)
    for e in entries:
        if e.supersedes is not None:
            old = by_key.get(e.supersedes)
            if old is None or old.age_days <= e.age_days:
                raise ValueError(f"{e.key} supersedes {e.supersedes}, unknown or not older")
        if e.again and (e.type != O or any(d >= e.age_days for d in e.again)):
            raise ValueError(f"{e.key}: only an observation is noted again, and after it began")
        events.append((e.age_days, 0, e))
        events.extend((d, 1, e) for d in e.again)
    oldest = max(d for d, _, _ in events)
    start = clock()
    ids: dict[str, int] = {}
    for days_ago, again, e in sorted(events, key=lambda ev: (-ev[0], ev[1], ev[2].key)):
        moment = start + (oldest - days_ago) * DAY
        if moment > clock():
            clock.advance(moment - clock())
        entry, reinforced = memory.remember(
            NewMemory(
                type=e.type,
                text=e.text,
                tags=e.tags,
                supersedes=ids[e.supersedes] if e.supersedes is not None else None,
            )
        )
        if again:
            if not reinforced or entry.id != ids[e.key]:
                raise ValueError(f"noting {e.key} again made a new entry {entry.id}")
        else:
            if reinforced:
                raise ValueError(f"{e.key} merged into entry {entry.id}: make the texts differ")
            ids[e.key] = entry.id
    end = start + oldest * DAY
    if end > clock():
        clock.advance(end - clock())
    return ids


@contextmanager
def labelled_memory(
    config: MemoryConfig | None = None,
    folder: str | Path | None = None,
    location: str | None = None,
) -> Iterator[tuple[Memory, dict[str, int]]]:
    """A fresh store with the labelled set loaded; (memory, ids). The store is a file in
    a temporary folder, or the empty store at ``location`` (a PostgreSQL URL)."""
    from accord.store import open_store

    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        clock = FakeClock()
        store: Store = open_store(
            location or str(Path(tmp) / "recall.db"),
            create=True,
            synchronous="normal",
            clock=clock,
        )
        try:
            store.create_team(TEAM)
            memory = Memory(store, TEAM, config, clock=clock)
            ids = load(memory, clock)
            yield memory, ids
        finally:
            store.close()


# scoring -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueryResult:
    """What recall returned for one query (as keys, best first) and how it scored."""

    query: Query
    returned: tuple[str, ...]
    recall5: float
    recall10: float
    reciprocal_rank: float


@dataclass(frozen=True, slots=True)
class Scores:
    """Recall@5, recall@10 and MRR averaged over queries, and each query's result."""

    recall5: float
    recall10: float
    mrr: float
    results: tuple[QueryResult, ...] = field(default=())

    def by_kind(self) -> dict[str, Scores]:
        kinds: dict[str, list[QueryResult]] = {}
        for r in self.results:
            kinds.setdefault(r.query.kind, []).append(r)
        return {kind: _average(rs) for kind, rs in kinds.items()}


def _average(results: Sequence[QueryResult]) -> Scores:
    n = len(results) or 1
    return Scores(
        recall5=sum(r.recall5 for r in results) / n,
        recall10=sum(r.recall10 for r in results) / n,
        mrr=sum(r.reciprocal_rank for r in results) / n,
        results=tuple(results),
    )


def score(query: Query, returned: Sequence[str]) -> QueryResult:
    """Recall@5, recall@10 and reciprocal rank of ``returned`` (keys, best first)."""
    relevant = set(query.relevant)
    rank = next((i for i, key in enumerate(returned[:10], 1) if key in relevant), None)
    return QueryResult(
        query=query,
        returned=tuple(returned),
        recall5=len(relevant & set(returned[:5])) / len(relevant),
        recall10=len(relevant & set(returned[:10])) / len(relevant),
        reciprocal_rank=1.0 / rank if rank else 0.0,
    )


def evaluate(memory: Memory, ids: dict[str, int], queries: Sequence[Query] = QUERIES) -> Scores:
    """Run every query through ``memory.recall`` (k=10) and score the rankings."""
    keys = {v: k for k, v in ids.items()}
    results = []
    for q in queries:
        found = memory.recall(q.text, k=10)
        results.append(score(q, [keys.get(r.entry.id, f"#{r.entry.id}") for r in found]))
    return _average(results)
