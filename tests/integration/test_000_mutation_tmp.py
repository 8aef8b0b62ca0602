import psycopg
def test_apply_mutation(database):
    with psycopg.connect(database.superuser_url, autocommit=True) as c:
        c.execute("""grant select on users to backoffice_app""")
