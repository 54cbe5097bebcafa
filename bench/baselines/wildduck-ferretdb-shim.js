// wildduck-ferretdb-shim.js — WORKAROUND, loaded with `node --require` by wildduck.sh when
// WildDuck runs against FerretDB 1.24. It changes no file of WildDuck or of its
// dependencies; it wraps methods of the MongoDB driver's Collection class at run time.
//
// Why: the driver (mongodb 4.17, WildDuck's pinned version) sends the `projection` option of
// findOneAndUpdate/findOneAndReplace/findOneAndDelete as the `fields` field of a
// findAndModify command. FerretDB 1.24 refuses that field:
//   findAndModify: support for field "fields" with value ... is not implemented yet
// WildDuck passes a projection on many of these calls (e.g. the quota update on every
// APPEND / LMTP delivery), so without this shim every APPEND answers
// "NO [TEMPFAIL] APPEND completed".
//
// A second refusal: WildDuck's thread lookup (MessageHandler.getThreadIdAsync, run for every
// APPEND and delivery) is a findOneAndUpdate with an update *pipeline* on `threads`
// ($set with $cond/$isArray, $ifNull, then $setUnion). FerretDB 1.24 answers
//   Aggregation pipelines are not supported yet
// translatePipeline() below rewrites exactly that shape into operator updates with the same
// effect on documents this benchmark creates: `{$ifNull: ['$f', v]}` -> $setOnInsert f
// (skipped when the query pins f), `{$setUnion: ['$f', list]}` -> $addToSet f $each list,
// `{$cond: [{$isArray: '$f'}, '$f', ['$f']]}` (turns a legacy scalar `ids` into an array)
// -> dropped (every thread this server writes already has an array), plain values -> $set.
// Any other pipeline is passed through unchanged, so FerretDB's error stays visible.
//
// A third refusal, the fundamental one: FerretDB 1.x stores no nested arrays, and WildDuck
// caches the IMAP ENVELOPE and BODYSTRUCTURE of every message as nested arrays in
// messages.envelope / messages.bodystructure. The insert fails with
//   invalid value: { "envelope": [ ... ] } (nested arrays are not supported)
// dropCachedStructure() removes those two fields from documents written to `messages` and
// `archived` (insertOne, insertMany, bulkWrite insertOne/replaceOne). WildDuck's FETCH code
// already computes both from the stored mimeTree when the cache field is missing, but a
// metadata-only FETCH (e.g. `FETCH 1:* (ENVELOPE)`) does not load mimeTree; so a find()
// projection on those collections that asks for envelope or bodystructure also gets
// mimeTree here. Cost: such FETCHes read and parse the MIME tree (as our own servers do on
// FerretDB, which skip the same cache fields).
//
// What (projection): the projection is removed from the command and applied to the returned document
// here (top-level keys: inclusion keeps the named keys' first path component and _id unless
// excluded; exclusion deletes the named top-level keys). The server therefore returns and
// the client decodes whole documents: a small extra cost that a benchmark should mention.
'use strict';

const wildduckDir = process.env.WILDDUCK_DIR || process.cwd();
const mongodb = require(require.resolve('mongodb', { paths: [wildduckDir] }));

function applyProjection(doc, projection) {
    if (!doc || typeof doc !== 'object' || !projection) {
        return doc;
    }
    const keys = Object.keys(projection);
    const included = keys.filter(k => k !== '_id' && projection[k] && typeof projection[k] !== 'object');
    if (included.length) {
        const out = {};
        if (!(keys.includes('_id') && !projection._id) && '_id' in doc) {
            out._id = doc._id;
        }
        for (const k of keys) {
            if (k === '_id' || !projection[k]) {
                continue;
            }
            const top = k.split('.')[0];
            if (top in doc) {
                out[top] = doc[top];
            }
        }
        return out;
    }
    for (const k of keys) {
        if (!projection[k] && !k.includes('.')) {
            delete doc[k];
        }
    }
    return doc;
}

function isFieldRef(v) {
    return typeof v === 'string' && /^\$[A-Za-z_][\w.]*$/.test(v);
}

// translatePipeline(query, pipeline): an operator update doing what the pipeline does, or
// null when the pipeline has a stage or expression this shim does not know.
function translatePipeline(query, pipeline) {
    const update = {};
    const put = (op, field, value) => {
        update[op] = update[op] || {};
        update[op][field] = value;
    };
    for (const stage of pipeline) {
        const keys = Object.keys(stage || {});
        if (keys.length !== 1 || (keys[0] !== '$set' && keys[0] !== '$addFields')) {
            return null;
        }
        for (const [field, value] of Object.entries(stage[keys[0]])) {
            const ops = value && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date) && value.constructor === Object ? Object.keys(value) : [];
            if (ops.length === 1 && ops[0] === '$ifNull' && Array.isArray(value.$ifNull) && value.$ifNull[0] === '$' + field) {
                if (!(field in query)) {
                    put('$setOnInsert', field, value.$ifNull[1]);
                }
            } else if (ops.length === 1 && ops[0] === '$setUnion' && Array.isArray(value.$setUnion) && value.$setUnion[0] === '$' + field && Array.isArray(value.$setUnion[1])) {
                put('$addToSet', field, { $each: value.$setUnion[1] });
            } else if (ops.length === 1 && ops[0] === '$cond' && Array.isArray(value.$cond) && value.$cond[1] === '$' + field) {
                // legacy scalar -> array normalisation; no-op for documents with arrays
            } else if (ops.some(op => op.startsWith('$')) || isFieldRef(value)) {
                return null;
            } else {
                put('$set', field, value);
            }
        }
    }
    return update;
}

function wrapPipeline() {
    const original = mongodb.Collection.prototype.findOneAndUpdate;
    mongodb.Collection.prototype.findOneAndUpdate = function (filter, update, ...rest) {
        if (Array.isArray(update)) {
            const translated = translatePipeline(filter || {}, update);
            if (translated) {
                update = translated;
            }
        }
        return original.call(this, filter, update, ...rest);
    };
}

function wrap(name, optionsIndex) {
    const original = mongodb.Collection.prototype[name];
    mongodb.Collection.prototype[name] = function (...args) {
        let options = args[optionsIndex];
        let callback;
        if (typeof options === 'function') {
            callback = options;
            options = undefined;
            args[optionsIndex] = {};
            args[optionsIndex + 1] = callback;
        } else if (typeof args[optionsIndex + 1] === 'function') {
            callback = args[optionsIndex + 1];
        }
        if (!options || !options.projection) {
            return original.apply(this, args);
        }
        const projection = options.projection;
        args[optionsIndex] = Object.assign({}, options);
        delete args[optionsIndex].projection;
        const fix = result => {
            if (result && typeof result === 'object' && 'value' in result && 'ok' in result) {
                result.value = applyProjection(result.value, projection);
                return result;
            }
            return applyProjection(result, projection);
        };
        if (callback) {
            args[optionsIndex + 1] = (err, result) => callback(err, err ? result : fix(result));
            return original.apply(this, args);
        }
        return original.apply(this, args).then(fix);
    };
}

const STRUCTURE_COLLECTIONS = new Set(['messages', 'archived']);

function dropCachedStructure(doc) {
    if (doc && typeof doc === 'object') {
        delete doc.envelope;
        delete doc.bodystructure;
    }
    return doc;
}

function wrapStructure() {
    const C = mongodb.Collection.prototype;
    const insertOne = C.insertOne;
    C.insertOne = function (doc, ...rest) {
        if (STRUCTURE_COLLECTIONS.has(this.collectionName)) {
            dropCachedStructure(doc);
        }
        return insertOne.call(this, doc, ...rest);
    };
    const insertMany = C.insertMany;
    C.insertMany = function (docs, ...rest) {
        if (STRUCTURE_COLLECTIONS.has(this.collectionName) && Array.isArray(docs)) {
            docs.forEach(dropCachedStructure);
        }
        return insertMany.call(this, docs, ...rest);
    };
    const bulkWrite = C.bulkWrite;
    C.bulkWrite = function (ops, ...rest) {
        if (STRUCTURE_COLLECTIONS.has(this.collectionName) && Array.isArray(ops)) {
            for (const op of ops) {
                if (op && op.insertOne) {
                    dropCachedStructure(op.insertOne.document || op.insertOne);
                }
                if (op && op.replaceOne) {
                    dropCachedStructure(op.replaceOne.replacement);
                }
            }
        }
        return bulkWrite.call(this, ops, ...rest);
    };
    const project = mongodb.FindCursor.prototype.project;
    mongodb.FindCursor.prototype.project = function (projection) {
        const coll = this.namespace && this.namespace.collection;
        if (STRUCTURE_COLLECTIONS.has(coll) && projection && (projection.envelope || projection.bodystructure) && !projection.mimeTree) {
            projection = Object.assign({}, projection, { mimeTree: true });
        }
        return project.call(this, projection);
    };
}

wrap('findOneAndUpdate', 2);
wrap('findOneAndReplace', 2);
wrap('findOneAndDelete', 1);
wrapPipeline();
wrapStructure();

process.emitWarning(
    'wildduck-ferretdb-shim: findOneAnd* projections applied client-side, threads pipeline update rewritten, messages envelope/bodystructure cache not stored (FerretDB 1.24 workarounds)',
    { code: 'WD_BENCH_SHIM' }
);
