""":class:`LocalPipeline`: the emulator, the stack provisioned in it, and its functions running.

Use it as a context manager (the demo, tests) or through ``python -m configpipe_tools.local up``.
``stop()`` ends every poller, every execution environment and the server, in that order.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from configpipe_tools.local.provision import ACCOUNT, REGION, LocalStack, aws_client, provision
from configpipe_tools.local.sandbox import FunctionRuntime, FunctionSpec
from configpipe_tools.local.server import EmulatorServer, LambdaInvokeApi
from configpipe_tools.local.sources import AsyncInvocations, Destinations, ScheduledRule, StreamPoller
from configpipe_tools.local.state import STATE_FILE, SavedState, capture, key_adopter, restore
from configpipe_tools.local.template import STACK_NAME, Template, cached_template, repo_root, synthesise

if TYPE_CHECKING:
    from types import TracebackType

DEFAULT_PORT = 5000
#: Connections of the shared client ``Invoke(Event)`` enqueues with: the propagator's fan-out
#: invokes from up to this many threads at once.
ENQUEUE_CONNECTIONS = 32

#: What every client of the emulator needs (fake credentials: nothing can reach a real account).
CLIENT_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # botocore sends ARN-addressed DynamoDB (Streams) calls to account-id endpoints, which
    # bypass AWS_ENDPOINT_URL's host in some versions; the regional endpoint is equivalent.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


def client_env_file(variables: dict[str, str], scripts_dir: Path | None = None) -> str:
    """The text of ``.local/env``: ``variables`` exported, and this interpreter's scripts directory
    (the venv's ``bin``, absolute) first on ``PATH``. The docs run ``aws`` and ``configpipe`` right
    after ``source .local/env``; both are installed only in the venv, so without it they are
    "command not found" in a fresh shell."""
    scripts = (scripts_dir or Path(sysconfig.get_path("scripts"))).absolute()
    lines = [f"export {k}={shlex.quote(v)}" for k, v in variables.items()]
    lines.append(f'export PATH={shlex.quote(str(scripts))}:"$PATH"')
    return "\n".join(lines) + "\n"


@dataclass
class Options:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    template: Path | None = None
    resynth: bool = False
    state_dir: Path | None = None
    #: base of Lambda's async retry delays (AWS: 60 s, then 120 s); locally seconds, doubled per retry
    retry_delay: float = 1.0
    #: maximum concurrent execution environments per function
    max_concurrency: int = 4
    schedule_speedup: float = 1.0
    #: restore the emulator's data saved in ``state_dir`` at the last stop, and save it at this one
    keep_state: bool = False
    extra_environment: dict[str, str] = field(default_factory=dict)


class LocalPipeline:
    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self.repo = repo_root()
        self.state_dir = self.options.state_dir or self.repo / ".local"
        self.log_dir = self.state_dir / "logs"
        self.server = EmulatorServer(self.options.host, self.options.port)
        self.stack: LocalStack | None = None
        self.template: Template | None = None
        self.runtimes: dict[str, FunctionRuntime] = {}
        self._pollers: list[Any] = []
        self._local = threading.local()
        #: The SQS client ``enqueue`` uses. The emulator answers each request on a new thread,
        #: so a per-thread client would be built (a new session and client, ~0.5 s on a busy
        #: machine) for every ``Invoke(Event)``; boto3 clients are thread-safe, one serves all.
        self._enqueue_client: Any = None
        self._enqueue_lock = threading.Lock()
        self.started_in: float = 0.0
        self.state_file = self.state_dir / STATE_FILE
        #: what the start restored from ``state_file`` (``up`` prints it), and what it could not
        self.restored: SavedState | None = None
        self.restore_problems: list[str] = []
        #: set once start() has finished: only a pipeline that started saves its state (a start
        #: that failed half-way through the restore must not overwrite the saved file)
        self._running = False

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> LocalPipeline:
        began = time.monotonic()
        configured = self._configured_template()
        template_path = configured or synthesise(self.repo, force=self.options.resynth)
        self.template = Template.load(template_path)
        saved = SavedState.load(self.state_file) if self.options.keep_state else None
        self.server.start()
        try:
            self._wire(saved)
        except BaseException:
            self.stop()
            raise
        self._running = True
        self.started_in = time.monotonic() - began
        return self

    def _configured_template(self) -> Path | None:
        configured = self.options.template or os.environ.get("CONFIGPIPE_LOCAL_TEMPLATE")
        return Path(configured) if configured else None

    def template_source(self) -> str:
        """How :meth:`start` gets the template: what ``up`` says while it starts."""
        configured = self._configured_template()
        if configured is not None:
            return f"using the template {configured}"
        if not self.options.resynth and cached_template(self.repo) is not None:
            return "using the cached template (the stack's sources are unchanged since it was synthesised)"
        return "synthesising the stack (npx cdk synth; cached for the next start)"

    def _wire(self, saved: SavedState | None) -> None:
        assert self.template is not None
        adopt = key_adopter(saved) if saved else None
        self.stack = stack = provision(self.template, self.url, adopt_key=adopt)
        if saved is not None:
            # Before any poller starts: no function sees the restore as a change.
            self.restore_problems = restore(saved, stack, self.client)
            self.restored = saved
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for old in self.log_dir.glob("*.log"):
            old.unlink()
        base = self.function_base_environment()
        for name, spec in stack.functions.items():
            self.runtimes[name] = FunctionRuntime(
                spec=spec,
                base_environment=base,
                task_root=self.repo / "functions",
                log_file=self.log_dir / f"{name}.log",
                max_concurrency=self.concurrency_of(spec),
            )
        destinations = Destinations(self.client, self.enqueue)
        self.server.app.invoke_api = LambdaInvokeApi(stack, self.runtimes, self.enqueue)
        for name, queue_url in stack.async_queues.items():
            self._pollers.append(
                AsyncInvocations(
                    self.runtimes[name],
                    queue_url,
                    self.client,
                    destinations,
                    retry_delay=self.options.retry_delay,
                    concurrency=self.concurrency_of(stack.functions[name]),
                )
            )
        for mapping in stack.mappings:
            if mapping.enabled and not mapping.is_queue:
                self._pollers.append(
                    StreamPoller(mapping, self.runtimes[mapping.function], self.client, destinations)
                )
            elif mapping.is_queue:
                stack.skipped.append(
                    (mapping.logical_id, "AWS::Lambda::EventSourceMapping", "SQS sources not emulated")
                )
        for schedule in stack.schedules:
            self._pollers.append(
                ScheduledRule(
                    schedule,
                    self.enqueue,
                    region=REGION,
                    account=ACCOUNT,
                    speedup=self.options.schedule_speedup,
                )
            )
        for poller in self._pollers:
            poller.start()
        self._write_state()

    def stop(self) -> None:
        for poller in self._pollers:
            poller.stop()
        for poller in self._pollers:
            poller.join()
        self._pollers.clear()
        for runtime in self.runtimes.values():
            runtime.close()
        try:
            if self.options.keep_state:
                self.save_state()
        finally:
            self.server.stop()

    def save_state(self) -> None:
        """Save the emulator's data to :attr:`state_file` (:mod:`configpipe_tools.local.state`)."""
        if not self._running or self.stack is None or self.template is None:
            return  # it never (fully) started: keep what was saved before
        capture(self.stack, self.template, self.client).write(self.state_file)
        self._running = False

    def __enter__(self) -> LocalPipeline:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- what clients need --------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, service: str) -> Any:
        """A boto3 client on the emulator (one per thread and service: pollers run in parallel)."""
        cache: dict[str, Any] = self._local.__dict__.setdefault("clients", {})
        if service not in cache:
            cache[service] = aws_client(service, self.url)
        return cache[service]

    def enqueue(self, function: str, payload: bytes) -> None:
        """Lambda ``Invoke(InvocationType=Event)``: onto the function's async queue."""
        assert self.stack is not None
        if self._enqueue_client is None:
            with self._enqueue_lock:
                if self._enqueue_client is None:
                    self._enqueue_client = aws_client(
                        "sqs", self.url, max_pool_connections=ENQUEUE_CONNECTIONS
                    )
        self._enqueue_client.send_message(
            QueueUrl=self.stack.async_queues[function], MessageBody=payload.decode()
        )

    def client_environment(self) -> dict[str, str]:
        return {**CLIENT_ENVIRONMENT, "AWS_ENDPOINT_URL": self.url}

    def concurrency_of(self, spec: FunctionSpec) -> int:
        """How many invocations of ``spec`` may run at once: the runner's bound, lowered to the
        function's reserved concurrency as Lambda lowers it (a function reserved at 1 runs one
        invocation at a time; its other async events wait in the queue, as throttled ones do)."""
        reserved = spec.reserved_concurrency
        return (
            self.options.max_concurrency
            if reserved is None
            else max(1, min(reserved, self.options.max_concurrency))
        )

    def function_base_environment(self) -> dict[str, str]:
        """Environment every function starts with, before its own template variables."""
        keep = {
            k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ", "SYSTEMROOT", "TMPDIR")
        }
        return {
            **keep,
            **self.client_environment(),
            "AWS_SESSION_TOKEN": "testing",
            "PYTHONPATH": str(self.repo / "functions"),
            "PYTHONUNBUFFERED": "1",
            # X-Ray is not emulated; the Tracer would otherwise look for a daemon.
            "POWERTOOLS_TRACE_DISABLED": "true",
            **self.options.extra_environment,
        }

    def outputs(self) -> dict[str, Any]:
        assert self.stack is not None
        return dict(self.stack.outputs)

    def cli_environment(self) -> dict[str, str]:
        """``configpipe`` CLI settings for this stack (its physical names)."""
        outputs = self.outputs()
        return {
            "CONFIGPIPE_BUS": str(outputs.get("EventBusName", "configpipe-config-bus")),
            "CONFIGPIPE_TABLE": str(outputs.get("ChangeLogTableName", "")),
            # issue 14: `configpipe status` / `watch` read what each service applied
            "CONFIGPIPE_LEDGER_TABLE": str(outputs.get("DeliveryLedgerTableName", "")),
            "CONFIGPIPE_SECRETS_KEY": str(outputs.get("SecretsKeyArn", "")),
            "CONFIGPIPE_REGISTRY_PARAMETER": str(
                outputs.get("RegistryParameterName", "/configpipe/registry")
            ),
        }

    def _write_state(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "outputs.json").write_text(json.dumps(self.outputs(), indent=2) + "\n")
        variables = {**self.client_environment(), "CONFIGPIPE_STACK": STACK_NAME, "AWS_PAGER": ""}
        (self.state_dir / "env").write_text(client_env_file(variables))

    def describe_state(self) -> str:
        """Whether the emulator's data outlives this run, in the banner's words."""
        if not self.options.keep_state:
            ignored = (
                f"; the state saved in {self.state_file} is ignored" if self.state_file.is_file() else ""
            )
            return (
                "NOT kept: every change is lost when `up` stops "
                f"(--keep-state keeps it in {self.state_file}){ignored}"
            )
        if self.restored is None:
            return f"kept: nothing saved yet; saved to {self.state_file} when `up` stops"
        problems = "".join(f"\n    not restored: {p}" for p in self.restore_problems)
        return (
            f"kept: restored {self.restored.summary()} saved at {self.restored.saved_at} "
            f"from {self.state_file}; saved again when `up` stops{problems}"
        )

    def describe(self) -> str:
        """What ``up`` prints: the endpoint, the functions, and how to publish with each client."""
        assert self.stack is not None
        stack, url = self.stack, self.url
        bus = self.cli_environment()["CONFIGPIPE_BUS"]
        aws = Path(sys.executable).with_name("aws")
        aws_cmd = str(aws) if aws.exists() else "aws"
        detail = json.dumps(
            {
                "changeId": "hello-1",
                "service": "checkout",
                "environment": "development",
                "key": "max_items",
                "operation": "put",
                "value": 25,
                "author": "you",
                "reason": "trying configpipe locally",
            }
        )
        entries = json.dumps(
            [
                {
                    "EventBusName": bus,
                    "Source": "configpipe.team.checkout",
                    "DetailType": "ConfigurationChange",
                    "Detail": detail,
                }
            ]
        )
        functions = "\n".join(
            f"    {name:<45} {spec.handler}" for name, spec in sorted(stack.functions.items())
        )
        mappings = "\n".join(
            f"    {m.function}: stream batch {m.batch_size}, retries {m.max_retry_attempts}, "
            f"bisect {m.bisect_on_error}, {len(m.filters)} filter(s)"
            for m in stack.mappings
        )
        skipped = sorted({t for _, t, _ in stack.skipped})
        targets = sum(len(v) for v in stack.rule_functions.values())
        return f"""
configpipe local pipeline is up on {url}  (started in {self.started_in:.1f}s)
  template: {self.template.path if self.template else "?"}
  functions (handler from the template, code from ./functions):
{functions}
  event sources: {targets} rule target(s), {len(stack.mappings)} stream mapping(s)
{mappings}
  function logs:   {self.log_dir}/<function>.log
  stack outputs:   {self.state_dir / "outputs.json"}
  not emulated:    {", ".join(skipped) or "nothing"}
  state:           {self.describe_state()}

Use it from another terminal:
  source {self.state_dir / "env"}        # AWS_ENDPOINT_URL, fake credentials, CONFIGPIPE_STACK

  # AWS CLI
  {aws_cmd} --endpoint-url {url} events put-events --entries {shlex.quote(entries)}
  {aws_cmd} --endpoint-url {url} ssm get-parameter --name /config/checkout/development/max_items
  {aws_cmd} --endpoint-url {url} dynamodb scan --table-name {stack.outputs.get("AppliedTableName", "?")}

  # boto3
  import boto3, json
  events = boto3.client("events", endpoint_url="{url}", region_name="{REGION}",
                        aws_access_key_id="testing", aws_secret_access_key="testing")
  events.put_events(Entries={entries})

  # configpipe CLI (names from the stack's outputs; `source` the env file to drop the flags)
  configpipe --endpoint-url {url} --stack {STACK_NAME} --source configpipe.team.checkout \\
      put checkout development max_items 30 --json -r "more"
  configpipe --endpoint-url {url} --stack {STACK_NAME} history checkout development max_items

Ctrl-C stops everything.
"""
