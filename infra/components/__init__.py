"""One construct per concern, composed by `infra.stack.ViberGatewayStack`.

(Not called `constructs`: `python infra/app.py` puts infra/ first on sys.path,
where a `constructs` folder would hide the `constructs` library.)
"""
