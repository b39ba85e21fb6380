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
