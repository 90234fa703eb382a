package eventjson

// StringMembers exposes stringMembers to the tests.
const StringMembers = stringMembers
