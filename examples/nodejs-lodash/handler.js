// Groups the payload's rows by a key with lodash, and shows that axios loads (its version);
// the function calls nothing over the network.
"use strict";

const _ = require("lodash");
const axios = require("axios");

exports.handle = (context, payload) => {
  const rows = (payload && payload.rows) || [];
  const groups = _.mapValues(_.groupBy(rows, "kind"), (items) => _.sumBy(items, "n"));
  return { groups, lodash: _.VERSION, axios: axios.VERSION };
};
