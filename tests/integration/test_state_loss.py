"""A Redis that restarts empty while an alert is open: the alert keeps its id, its resolve is
paged, and no second alert (another id, another delivery key) is paged for the same defect."""

from __future__ import annotations

import pytest

from monitor.core.state_redis import RedisStateStore
from monitor.inference.runs import DefectRuns
from tests.integration.conftest import Service, start_redis, wait_for
from tests.integration.test_paging_e2e import Running, black
from tests.receiver import Receiver

pytestmark = pytest.mark.integration


class Pipeline(Running):
    """The alert stage on a memory bus and a real Redis, fed black detections as inference
    publishes them (each defect's start carried on its spans by the same ``DefectRuns``)."""

    def __init__(self, receiver: Receiver, redis: Service, namespace: str) -> None:
        url = f"redis://{redis.address}/0"
        state = RedisStateStore(url, deployment=namespace, timeout=0.5, backoff=(0.1, 0.5))
        super().__init__(receiver, state)
        self.runs = DefectRuns()

    async def detect(self, seq: int, defective: bool) -> None:
        msg = black(seq, defective)
        spans = self.runs.carry("news", "black", msg.media_start, msg.media_end, msg.spans)
        await self.publish(msg.model_copy(update={"spans": spans}))


def deliveries(receiver: Receiver) -> list[str]:
    return [r.headers["x-vqm-delivery"] for r in receiver.accepted]


async def test_a_redis_restarted_empty_mid_alert_pages_its_resolve_and_no_second_alert(
    private_redis: Service, namespace: str
) -> None:
    receiver = Receiver()
    await receiver.start()
    restarted: Service | None = None
    try:
        async with Pipeline(receiver, private_redis, namespace) as pipeline:
            for seq in range(3):
                await pipeline.detect(seq, defective=True)
            assert await wait_for(lambda: len(receiver.accepted) == 1, timeout=10)
            [first] = deliveries(receiver)
            alert_id = first.removesuffix(":opened")

            private_redis.stop()  # no persistence: it comes back empty
            restarted = start_redis(private_redis.port)
            for seq in (3, 4):
                await pipeline.detect(seq, defective=True)
            await pipeline.detect(5, defective=False)

            resolved = f"{alert_id}:resolved"
            assert await wait_for(lambda: resolved in deliveries(receiver), timeout=15)
            assert await wait_for(pipeline.nothing_pending, timeout=10)
    finally:
        await receiver.stop()
        if restarted is not None:
            restarted.stop()
    # The re-found defect may page its opening again (the delivery marks went with Redis),
    # but under the same delivery key, which receivers deduplicate on.
    assert set(deliveries(receiver)) == {first, resolved}
    assert deliveries(receiver)[-1] == resolved
    assert {r.json()["alert"]["start"] for r in receiver.accepted} == {0.0}
