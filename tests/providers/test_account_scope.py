"""Each adapter's account scope: what shares one provider rate budget, as sharded polling by account
gives it to one worker. Same account -> same scope; another Region, endpoint or key -> another; no
secret in the string."""

from __future__ import annotations

from typing import Any

import pytest

from providers import SOURCES, QueueConfig

SECRETS = ("s3cret", "tok3n")


def queue(provider: str, name: str = "q1", **keys: Any) -> QueueConfig:
    return SOURCES[provider].config.model_validate({"name": name, "provider": provider, **keys})


# provider -> the keys of a base queue, and one change per row of what makes another account
ACCOUNTS: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {
    "sagemaker": (
        {"region": "us-east-1", "access_key_env": "TEAM_A_KEY", "secret_key_env": "TEAM_A_SECRET"},
        [{"region": "eu-west-1"}, {"access_key_env": "TEAM_B_KEY"}, {"endpoint_url": "http://127.0.0.1:9"}],
    ),
    "batch": (
        {"region": "us-east-1", "job_queue": "gpu"},
        [{"region": "eu-west-1"}, {"access_key_env": "TEAM_B_KEY"}, {"endpoint_url": "http://127.0.0.1:9"}],
    ),
    "pai": (
        {"region": "cn-hangzhou", "workspace_id": "ws1"},
        [{"region": "cn-shanghai"}, {"access_key_env": "OTHER_ID"}, {"endpoint_url": "http://127.0.0.1:9"}],
    ),
    "aitems": (
        {"service_id": "svc1"},
        [{"access_key_env": "OTHER_NCP_KEY"}, {"endpoint_url": "http://127.0.0.1:9"}],
    ),
    "modzy": (
        {"endpoint_url": "https://tenant-a.example.com/api"},
        [{"api_key_env": "OTHER_MODZY_KEY"}, {"endpoint_url": "https://tenant-b.example.com/api"}],
    ),
}

# what two queues of one account may differ in: what they list, not whose budget they spend
SAME_ACCOUNT: dict[str, dict[str, Any]] = {
    "sagemaker": {"name_contains": "bert"},
    "batch": {"job_queue": "cpu"},
    "pai": {"workspace_id": "ws2", "experiment_id": "e1"},
    "aitems": {"service_id": "svc2", "timezone": "UTC"},
    "modzy": {"model": "m1"},
}


@pytest.mark.parametrize("provider", sorted(ACCOUNTS))
def test_queues_of_one_account_share_a_scope(provider: str) -> None:
    base, _ = ACCOUNTS[provider]
    one = queue(provider, "q1", **base)
    other = queue(provider, "q2", **{**base, **SAME_ACCOUNT[provider]})
    assert one.account_scope() == other.account_scope()
    assert one.account_scope().startswith(f"{provider}:")
    assert one.account_scope() == queue(provider, "q1", **base).account_scope()  # stable


@pytest.mark.parametrize("provider", sorted(ACCOUNTS))
def test_another_region_endpoint_or_key_is_another_scope(provider: str) -> None:
    base, changes = ACCOUNTS[provider]
    scopes = {queue(provider, **base).account_scope()}
    for change in changes:
        scopes.add(queue(provider, **{**base, **change}).account_scope())
    assert len(scopes) == 1 + len(changes)


def test_sagemaker_and_batch_of_one_account_are_two_budgets() -> None:
    keys = {"region": "us-east-1", "access_key_env": "K", "secret_key_env": "S"}
    assert queue("sagemaker", **keys).account_scope() != queue("batch", job_queue="gpu", **keys).account_scope()


def test_aws_default_credential_chain_is_one_identity() -> None:
    """No key variables: every such queue of a region uses the process's default chain. Naming only the
    secret's variable reads the id from AWS_ACCESS_KEY_ID (make_client), so that is the same identity as naming it."""
    chain = queue("sagemaker", "a", region="us-east-1").account_scope()
    assert chain == queue("sagemaker", "b", region="us-east-1", name_contains="x").account_scope()
    named = queue("sagemaker", region="us-east-1", access_key_env="AWS_ACCESS_KEY_ID").account_scope()
    assert named != chain
    assert named == queue("sagemaker", region="us-east-1", secret_key_env="MY_SECRET").account_scope()


@pytest.mark.parametrize("provider", sorted(ACCOUNTS))
def test_no_credential_in_the_scope(provider: str) -> None:
    """A credential in an endpoint URL (user info, a query token) or a key variable's name never shows:
    only the provider, its region or host, and a 12-digit digest."""
    base, _ = ACCOUNTS[provider]
    url = "https://user:s3cret@api.example.com:8443/v1?token=tok3n"
    keys: dict[str, Any] = {"endpoint_url": url, "access_key_env": "SECRET_TEAM_VAR", "api_key_env": "SECRET_TEAM_VAR"}
    scope = queue(provider, **{**base, **keys}).account_scope()
    assert not any(secret in scope for secret in SECRETS)
    assert "user" not in scope and "SECRET_TEAM_VAR" not in scope
    digest = scope.rsplit(":", 1)[1]
    assert len(digest) == 12 and all(c in "0123456789abcdef" for c in digest)


def test_an_unsharded_provider_queue_is_its_own_scope() -> None:
    """The base rule (an adapter that does not override it): the queue alone, which can never equal an
    account scope nor a queue name (queue names have no colon)."""
    base = QueueConfig(name="q1", provider="custom")
    assert base.account_scope() == "custom:queue:q1"
