local oke = require("oke")
function to_peer(msg, ctx)
  return {
    given = oke.get(msg, "person.givenName"),
    first_code = oke.get(msg, "person.otherCodes.0.code"),
    account = oke.get(msg, "person.otherCodes.codeType=accountId.code"),
    extra = oke.get(msg, "consumers.nl-test-admin.additionalTimeInMin"),
    first_need = oke.get(msg, "consumers.nl-test-admin.personalNeeds.0"),
    preferred = oke.get(msg, "person.consumers.nl-test-admin.preferredName"),
    missing = oke.get(msg, "person.nothing.here") == nil,
    past_end = oke.get(msg, "person.otherCodes.5") == nil,
    other_consumer = oke.get(msg, "consumers.someone-else") == nil,
    whole = oke.get(msg, "") == msg,
    through_null = oke.get(msg, "nulled.deeper") == nil,
    null_leaf = oke.get(msg, "nulled") == json.null,
    dotted_key = oke.get(msg, { "a.b", 0 }),
  }
end
