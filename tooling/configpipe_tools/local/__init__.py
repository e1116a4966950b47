"""The local pipeline: the synthesised CDK stack running on this machine.

An AWS emulator (the moto server) serves every AWS API over HTTP on 127.0.0.1; the stack's
resources are provisioned in it from the synthesised CloudFormation template; the stack's
Lambda functions run as the code that ships to Lambda, each in its own local execution
environment, fed by the same event sources as in AWS (EventBridge rules, the change log's
DynamoDB stream, asynchronous ``Invoke``) with Lambda's retry and on-failure semantics.

This package is a developer tool: it is excluded from the Lambda asset.

- :mod:`.template`  reads the synthesised template and resolves its intrinsics
- :mod:`.provision` creates the template's resources in the emulator
- :mod:`.server`    the emulator endpoint (moto + the local Lambda ``Invoke`` API)
- :mod:`.sandbox`   execution environments: one worker process per function instance
- :mod:`.sources`   event sources: async invocation queues, stream and schedule pollers
- :mod:`.runner`    :class:`LocalPipeline`, which ties them together
- :mod:`.state`     ``up --keep-state``: the emulator's data saved at a stop, restored at a start
- :mod:`.waiting`   patient waits with progress, for people at a terminal (the demo)
- :mod:`.fixtures`  demo fixtures, *not* part of the stack: stand-ins for the registry's release
  functions (the teams' own), so a local release has an alias to shift
- ``python -m configpipe_tools.local up`` keeps it running for any client
"""
