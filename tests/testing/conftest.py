# example_project/ is a separate project (its own pytest.ini): test_plugin.py runs it with pytest in a subprocess.
collect_ignore = ["example_project"]
