"""Operators' routes: Prometheus metrics and the read-only dashboard's API, in process."""

from __future__ import annotations

from fastapi.testclient import TestClient

SPACE = {"x": {"type": "float", "low": 0, "high": 1}}


def test_metrics_count_requests_by_route_and_trials_by_state(api: TestClient) -> None:
    api.post("/v1/studies", json={"name": "m", "space": SPACE})
    for _ in range(3):
        api.post("/v1/studies/m/trials")
    api.post("/v1/studies/m/trials/0/tell", json={"value": 1.0})
    api.get("/v1/studies/nope")
    text = api.get("/metrics").text
    assert (
        'optunapi_requests_total{method="POST",route="/v1/studies/{name}/trials",status="201"} 3.0'
        in text
    )
    assert 'route="/v1/studies/{name}",status="404"' in text
    assert 'optunapi_trials{state="running",study="m"} 2.0' in text
    assert 'optunapi_trials{state="complete",study="m"} 1.0' in text
    assert "optunapi_request_seconds_bucket" in text
    api.head("/v1/health")
    api.get("/api/studies")
    text = api.get("/metrics").text
    assert 'method="HEAD",route="/v1/health",status="200"' in text
    assert 'method="GET",route="/dashboard",status="200"' in text


def test_dashboard_serves_its_page_and_api_read_only(api: TestClient) -> None:
    api.post("/v1/studies", json={"name": "d", "space": SPACE})
    page = api.get("/dashboard")
    assert page.status_code == 200 and "bundle.js" in page.text
    studies = api.get("/api/studies").json()["study_summaries"]
    assert [s["study_name"] for s in studies] == ["d"]
    study_id = studies[0]["study_id"]
    refused = api.delete(f"/api/studies/{study_id}")
    assert refused.status_code == 405 and refused.json()["type"].endswith("method-not-allowed")
    assert api.get("/v1/studies/d").status_code == 200  # still there


def test_dashboard_requests_it_cannot_read_are_client_errors(api: TestClient) -> None:
    """The dashboard answers 500 to a query it cannot parse; the client gets a 400 problem
    (never a 500 for what it sent), and a 404 where the dashboard has nothing."""
    api.post("/v1/studies", json={"name": "d", "space": SPACE})
    api.post("/v1/studies/d/trials")
    study_id = api.get("/api/studies").json()["study_summaries"][0]["study_id"]
    for target in ("?after=abc", "?after=", "?after=1.5", "?after=-1", "/plot/contour"):
        answer = api.get(f"/api/studies/{study_id}{target}")
        assert answer.status_code == 400, target
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"].endswith("bad-request")
        assert "could not answer" in answer.json()["detail"]
    assert api.get(f"/api/studies/{study_id}?after=0").status_code == 200
    missing = api.get("/api/studies/999")
    assert missing.status_code == 404 and missing.json()["type"].endswith("not-found")
