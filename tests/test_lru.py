from qa.lru import LRU


def test_forgets_the_least_recently_used() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and len(cache) == 2


def test_get_or_create_creates_once() -> None:
    cache: LRU[str, list[int]] = LRU(2)
    first = cache.get_or_create("k", list)
    assert cache.get_or_create("k", list) is first


def test_claim_is_all_or_nothing() -> None:
    seen: LRU[str, None] = LRU(10)
    assert seen.claim("event:1", "msg:1")
    assert not seen.claim("event:2", "msg:1")
    assert seen.claim("event:2", "msg:2")
    assert not seen.claim("event:1")
