"""The pytest plugin's fixtures work in a user's test file that only imports userdir."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_fixtures_in_a_plain_test_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mine="""
        import userdir

        def test_notion(notion_emulator):
            notion_emulator.add_user(name="Ada", email="ada@example.com")
            with userdir.connect("notion", token=notion_emulator.token,
                                 transport=notion_emulator.transport) as d:
                assert d.find_user_by_email("ADA@example.com").name == "Ada"

        def test_org(org_api_emulator):
            org_api_emulator.add_user(email="bo@example.com", first_name="Bo")
            with userdir.connect("org_api", api_key=org_api_emulator.api_key,
                                 base_url="https://org.test",
                                 transport=org_api_emulator.transport) as d:
                assert [u.name for u in d.iter_users()] == ["Bo"]

        def test_rest(rest_emulator):
            with userdir.connect("rest", token=rest_emulator.token, base_url="https://r.test",
                                 transport=rest_emulator.transport) as d:
                d.create_user(userdir.NewUser(email="c@example.com", name="C", password="pw"))
                assert len(rest_emulator) == 1

        def test_fresh_each_time(rest_emulator):
            assert len(rest_emulator) == 0
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_readme_examples_run(pytester: pytest.Pytester) -> None:
    """The README's "Testing your code with userdir" examples, exactly as written, and
    what it says of anyio's plugin: it comes with httpx and runs async tests."""
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Testing your code with userdir", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]
    assert len(blocks) == 2  # the blocking example and the async one
    assert "asyncio.run(" in blocks[1]
    assert "`@pytest.mark.anyio`" in section
    for number, code in enumerate(blocks):
        pytester.makepyfile(**{f"test_readme_{number}": code})
    pytester.makepyfile(
        test_anyio="""
        import pytest
        import userdir

        @pytest.mark.anyio
        async def test_rest(rest_emulator):
            rest_emulator.add_user(email="ada@example.com", name="Ada", status="inactive")
            async with userdir.connect_async("rest", base_url="https://r.test",
                                             transport=rest_emulator.transport,
                                             **rest_emulator.credentials) as d:
                user = await d.find_user_by_email("ADA@example.com")
            assert user.status is userdir.UserStatus.INACTIVE
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=3)
