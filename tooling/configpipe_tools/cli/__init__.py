"""The ``configpipe`` command line: people's way to change, read, audit and follow config.

Every write goes through the public ``ConfigurationChange`` contract on the config bus,
exactly as any other publisher's; the CLI only *reads* the change log. Entry point:
``configpipe_tools.cli.main:app``. Not shipped in the Lambda asset.
"""
