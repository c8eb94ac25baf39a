-- wrk script: log in (a new user each time; see examples/bench_server).
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{}'
