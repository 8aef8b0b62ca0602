from sqlalchemy import text


def test_admin_sees_own_org_and_no_other(world, act_as):
    s = act_as(world.admin.id, world.org_a)
    assert s.execute(text("select id from organizations")).scalars().all() == [world.org_a]
