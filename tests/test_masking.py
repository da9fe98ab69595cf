"""One masker for every URL the project prints (workers.urls.masked): a password written in any
form a Redis URL takes is hidden in settings' repr, the start log line, ``status``, emitters'
repr and warnings, and the one-line errors of a bad URL."""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from collector.settings import Settings
from collector.status import snapshot
from workers.emitter import Emitter
from workers.errors import ConfigError
from workers.settings import EmitterSettings
from workers.urls import check_redis_url, masked

# Passwords of characters a URL may carry raw or must escape; the marker keeps them apart from
# the rest of each URL, so finding one in the output is finding the password.
PASSWORDS = st.text(alphabet="Zq9/?#@:%&=+ !$*", min_size=1, max_size=12).map(lambda p: f"Q{p}Q")
FORMS = [
    "redis://user:{raw}@host:6379/0",
    "redis://:{raw}@host/0",
    "rediss://user:{quoted}@host:6380/1",
    "redis://host:6379/0?password={quoted}",
    "redis://host:6379/0?db=1&PASSWORD={quoted}&socket_timeout=5",
    "unix://:{raw}@/tmp/redis.sock?db=0",
    "unix:///tmp/redis.sock?password={quoted}",
    "redis+cluster://user:{raw}@node1:7000/0",
    "redis://user:{raw}@[::1]:6379/0",
]


def urls(password: str) -> list[str]:
    return [form.format(raw=password, quoted=quote(password, safe="")) for form in FORMS]


def hidden(password: str, text: str) -> bool:
    return password not in text and quote(password, safe="") not in text


@hsettings(max_examples=200, deadline=None)
@given(PASSWORDS)
def test_a_password_in_any_form_is_masked(password: str) -> None:
    for url in urls(password):
        assert hidden(password, masked(url)), url


@pytest.mark.parametrize("password", ["Qpa/ssQ", "Qpa?ssQ", "Qpa#ssQ", "Qpa@ssQ"])
@pytest.mark.redis
def test_every_place_a_url_is_printed_masks_it(
    password: str, fake_redis, real_redis, caplog
) -> None:
    for url in urls(password):
        try:
            check_redis_url(url)
        except ConfigError:  # a raw / ? or # in the password: the error (below) masks it
            continue
        settings = Settings(redis_url=url, queue="q")
        shown = [repr(settings), settings.describe(), repr(EmitterSettings(redis_url=url))]
        emitter = Emitter(url, "q", client=fake_redis)
        shown.append(repr(emitter))
        emitter.close()
        found = snapshot(real_redis, None, redis_url=url, db_url="sqlite://", queue="q")
        shown.append(str(found))
        with caplog.at_level(logging.DEBUG):
            logging.getLogger("test").warning("%s", masked(url))
        shown.append(caplog.text)
        for text in shown:
            assert hidden(password, text), (url, text)


@pytest.mark.parametrize("password", ["Qpa/ssQ", "Qpa?ssQ", "Qpa#ssQ"])
def test_the_error_of_a_url_redis_cannot_read_masks_its_password(password: str) -> None:
    url = f"redis://user:{password}@host:6379/0"  # a raw / ? or # ends the host part early
    with pytest.raises(ConfigError) as caught:
        check_redis_url(url)
    assert hidden(password, str(caught.value)), str(caught.value)
    assert str(caught.value).endswith(": redis://user:***@host:6379/0")
