"""The properties every configpipe DynamoDB table shares, defined once: string ``pk``/``sk``
keys, on-demand billing, point-in-time recovery, encryption at rest."""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.constructs import nag


def table(
    scope: Construct,
    construct_id: str,
    *,
    removal_policy: RemovalPolicy,
    encryption_key: kms.IKey | None = None,
    **properties: Any,
) -> dynamodb.Table:
    """A table with the shared properties; encrypted with ``encryption_key`` if given, else with
    the AWS-managed key. ``properties`` adds what is particular to one table (a stream, ...)."""
    created = dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        encryption=(
            dynamodb.TableEncryption.CUSTOMER_MANAGED
            if encryption_key
            else dynamodb.TableEncryption.AWS_MANAGED
        ),
        encryption_key=encryption_key,
        removal_policy=removal_policy,
        **properties,
    )
    nag.acknowledge(
        created,
        "NIST.800.53.R5-DynamoDBInBackupPlan",
        "Point-in-time recovery is on (restore to any second of the last 35 days); a scheduled "
        "AWS Backup plan is the account's choice, made once for all its tables (an organisation "
        "backup policy selecting them by tag), not one stack's.",
    )
    return created
