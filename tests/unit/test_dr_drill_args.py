"""The DR drill's own options: checked before anything is contacted."""

import pytest

from runbooks import dr_drill


@pytest.mark.parametrize("parts", ["d", "a,,b", "c;rm", ""])
def test_parts_outside_a_b_c_are_refused_before_any_host(parts, capsys):
    with pytest.raises(SystemExit) as e:
        dr_drill.main(["--parts", parts])
    assert e.value.code == 2 and "--parts" in capsys.readouterr().err
