"""Value pools of the non-CRM generator profiles (British, German, Victorian, business contacts).

Plain data on purpose, so a reader sees what the profiles draw from. Places and phone numbers are
fictional-looking but plausibly formatted; no real person is described.
"""

from __future__ import annotations

# --- British (few_fields, b2b) ----------------------------------------------------------------
UK_MALE = """Oliver George Harry Jack Jacob Charlie Thomas Oscar William James Henry Leo Alfie Joshua Freddie
Archie Ethan Isaac Alexander Joseph Edward Samuel Max Daniel Arthur Lucas Mohammed Logan Theo Harrison
Benjamin Mason Sebastian Finley Adam Dylan Zachary Riley Teddy Toby Rory Callum Liam Connor Kieran Gareth
Nigel Graham Stuart Ian Andrew Paul Mark David Richard Robert Michael Christopher Stephen Matthew""".split()
UK_FEMALE = """Olivia Amelia Isla Ava Emily Isabella Mia Poppy Ella Lily Evie Grace Sophia Sophie Chloe Freya
Charlotte Daisy Alice Phoebe Florence Ruby Jessica Matilda Rosie Millie Sienna Erin Imogen Holly Megan
Hannah Lucy Rebecca Katie Bethany Laura Gemma Claire Joanne Nicola Sarah Emma Rachel Helen Susan Karen
Elizabeth Victoria Catherine Margaret Jennifer Samantha Abigail Eleanor Harriet Niamh Siobhan""".split()
UK_SURNAMES = """Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson Thompson
Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson Wood Turner Martin Cooper
Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan Allen James Scott Phillips Watson Davis Parker
Price Bennett Young Griffiths Mitchell Kelly Cook Carter Richardson Bailey Collins Bell Shaw Murphy Miller
Cox Richards Khan Marshall Anderson Simpson Ellis Adams Singh Begum Wilkinson Foster Chapman Powell Webb
Rogers Gray Mason Ali Hunt Hussain Campbell Matthews Owen Palmer Holmes Mills Barnes Knight Lloyd Butler
Russell Barker Fisher Stevens Jenkins Murray Dixon Harvey Graham Pearson Ahmed Fletcher Walsh Kaur Gibson
Howard Andrews Stewart Elliott Reynolds Saunders Payne Fox Ford Pearce Day Brooks West Lawrence Cole
Atkinson Bradley Spencer Gill Dawson Ball Burton O'Brien Watts Rose Booth Perry Ryan Grant Wells
Armstrong Francis Rees Hayes Hart Hudson Newman Barrett Webster Hunter Gregory Carr Lowe Page Marsh
Riley Dunn Woods Parsons Berry Stone Reid Holland Hawkins Harding Porter Robertson Newton Oakley
Fitzgerald McDonald MacKenzie O'Connor Ashworth Featherstone Higginbottom Rowbotham Worthington""".split()
UK_COMMON_NAMES = [
    ("David", "Jones"),
    ("John", "Smith"),
    ("Sarah", "Williams"),
    ("Mohammed", "Khan"),
    ("James", "Taylor"),
    ("Emma", "Brown"),
    ("Michael", "Evans"),
    ("Claire", "Davies"),
]
# (town, postcode areas); postcodes are drawn as AREA + district + " " + sector + unit
UK_TOWNS = [
    ("London", ["E", "N", "SE", "SW", "NW", "W"]),
    ("Manchester", ["M"]),
    ("Birmingham", ["B"]),
    ("Leeds", ["LS"]),
    ("Sheffield", ["S"]),
    ("Bristol", ["BS"]),
    ("Liverpool", ["L"]),
    ("Newcastle upon Tyne", ["NE"]),
    ("Nottingham", ["NG"]),
    ("Leicester", ["LE"]),
    ("Cardiff", ["CF"]),
    ("Glasgow", ["G"]),
    ("Edinburgh", ["EH"]),
    ("Belfast", ["BT"]),
    ("York", ["YO"]),
    ("Bath", ["BA"]),
    ("Norwich", ["NR"]),
    ("Brighton", ["BN"]),
    ("Oxford", ["OX"]),
    ("Cambridge", ["CB"]),
    ("Milton Keynes", ["MK"]),
    ("Stoke-on-Trent", ["ST"]),
    ("St Albans", ["AL"]),
    ("Kingston upon Hull", ["HU"]),
]
# How towns are also written by hand or by other systems.
TOWN_VARIANTS = {
    "Newcastle upon Tyne": ["Newcastle", "Newcastle-upon-Tyne"],
    "Kingston upon Hull": ["Hull"],
    "Stoke-on-Trent": ["Stoke on Trent", "Stoke"],
    "St Albans": ["St. Albans", "Saint Albans"],
    "London": ["LONDON", "London, UK"],
    "Milton Keynes": ["M. Keynes"],
}
UK_EMAIL_DOMAINS = [
    "gmail.com",
    "gmail.com",
    "hotmail.co.uk",
    "yahoo.co.uk",
    "btinternet.com",
    "outlook.com",
    "sky.com",
    "icloud.com",
    "live.co.uk",
    "aol.com",
]
UK_NICKNAMES = {
    "Thomas": ["Tom", "Tommy"],
    "William": ["Will", "Bill"],
    "James": ["Jim", "Jamie"],
    "Alexander": ["Alex", "Sandy"],
    "Joseph": ["Joe"],
    "Edward": ["Ed", "Ted", "Eddie"],
    "Samuel": ["Sam"],
    "Daniel": ["Dan", "Danny"],
    "Benjamin": ["Ben"],
    "Zachary": ["Zach"],
    "Frederick": ["Fred", "Freddie"],
    "Henry": ["Harry", "Hal"],
    "Andrew": ["Andy"],
    "Richard": ["Rich", "Dick"],
    "Robert": ["Rob", "Bob", "Bobby"],
    "Michael": ["Mike", "Mick"],
    "Christopher": ["Chris"],
    "Stephen": ["Steve"],
    "Matthew": ["Matt"],
    "David": ["Dave"],
    "Jessica": ["Jess"],
    "Rebecca": ["Becky", "Becca"],
    "Elizabeth": ["Liz", "Beth", "Lizzie"],
    "Victoria": ["Vicky", "Tori"],
    "Catherine": ["Kate", "Cath"],
    "Margaret": ["Maggie", "Peggy"],
    "Jennifer": ["Jen", "Jenny"],
    "Samantha": ["Sam"],
    "Abigail": ["Abby"],
    "Eleanor": ["Ellie", "Nell"],
    "Katie": ["Kate"],
    "Nicola": ["Nicky"],
    "Harriet": ["Hattie"],
    "Florence": ["Flo"],
    "Matilda": ["Tilly"],
    "Isabella": ["Bella", "Izzy"],
    "Sophia": ["Sophie"],
}

# --- German (split_dob) -----------------------------------------------------------------------
DE_MALE = """Thomas Michael Andreas Stefan Frank Jürgen Peter Klaus Wolfgang Uwe Markus Christian Matthias Martin
Jörg Dirk Sven Tobias Florian Sebastian Alexander Maximilian Lukas Jonas Felix Leon Paul Johannes Niklas Jan
Tim Philipp Moritz Benedikt Dieter Hans Günter Horst Helmut Manfred Bernd Rainer Ralf Karl Heinz Werner
Friedrich Wilhelm Georg Ludwig Hermann Joachim""".split()
DE_FEMALE = """Sabine Petra Monika Claudia Susanne Andrea Birgit Stefanie Julia Katharina Anna Lena Laura Sarah
Lisa Hannah Leonie Lea Johanna Sophie Marie Charlotte Franziska Christina Nicole Sandra Anja Kerstin Heike
Ursula Renate Gisela Helga Ingrid Brigitte Karin Elke Jutta Barbara Gabriele Martina Silke Tanja Jana
Greta Emilia Mia Clara Luise Jessica""".split()
DE_SURNAMES = """Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch Bauer
Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange Schmitt Werner
Schmitz Krause Meier Lehmann Schmid Schulze Maier Köhler Herrmann König Walter Mayer Huber Kaiser Fuchs
Peters Lang Scholz Möller Weiß Jung Hahn Schubert Vogel Friedrich Keller Günther Frank Berger Winkler
Roth Beck Lorenz Baumann Franke Albrecht Schuster Simon Ludwig Böhm Winter Kraus Martin Schumacher Krämer
Vogt Stein Jäger Otto Sommer Groß Seidel Heinrich Brandt Haas Schreiber Graf Schulte Dietrich Ziegler
Kuhn Kühn Pohl Engel Horn Busch Bergmann Thomas Voigt Sauer Arnold Wolff Pfeiffer Yilmaz Kaya Nowak
Kowalski""".split()
DE_COMMON_NAMES = [
    ("Thomas", "Müller"),
    ("Michael", "Schmidt"),
    ("Andreas", "Schneider"),
    ("Sabine", "Müller"),
    ("Stefan", "Fischer"),
    ("Anna", "Schmidt"),
    ("Peter", "Weber"),
    ("Julia", "Meyer"),
]
# (city, PLZ prefixes)
DE_CITIES = [
    ("Berlin", ["10", "12", "13"]),
    ("Hamburg", ["20", "22"]),
    ("München", ["80", "81"]),
    ("Köln", ["50", "51"]),
    ("Frankfurt am Main", ["60"]),
    ("Stuttgart", ["70"]),
    ("Düsseldorf", ["40"]),
    ("Leipzig", ["04"]),
    ("Dortmund", ["44"]),
    ("Essen", ["45"]),
    ("Bremen", ["28"]),
    ("Dresden", ["01"]),
    ("Hannover", ["30"]),
    ("Nürnberg", ["90"]),
    ("Duisburg", ["47"]),
    ("Bochum", ["44"]),
    ("Wuppertal", ["42"]),
    ("Bielefeld", ["33"]),
    ("Bonn", ["53"]),
    ("Münster", ["48"]),
    ("Freiburg im Breisgau", ["79"]),
    ("Göttingen", ["37"]),
]
DE_NICKNAMES = {
    "Johannes": ["Hannes", "Johann"],
    "Katharina": ["Kathi", "Katrin"],
    "Wolfgang": ["Wolf"],
    "Christian": ["Chris"],
    "Alexander": ["Alex"],
    "Maximilian": ["Max"],
    "Franziska": ["Franzi"],
    "Stefanie": ["Steffi"],
    "Susanne": ["Susi"],
    "Friedrich": ["Fritz"],
    "Wilhelm": ["Willi"],
    "Matthias": ["Matze"],
    "Elisabeth": ["Lisa", "Elli"],
    "Gabriele": ["Gabi"],
    "Andreas": ["Andi"],
    "Helmut": ["Helmi"],
    "Christina": ["Tina"],
    "Joachim": ["Achim"],
    "Ursula": ["Uschi"],
}

# --- Victorian Britain (old_dob) --------------------------------------------------------------
OLD_MALE = """John William Thomas James George Joseph Henry Charles Samuel Edward Richard Robert Frederick Arthur
Alfred Albert Walter Ernest Harry Francis Herbert Benjamin Daniel Isaac Abraham Edwin Matthew Peter Stephen
Josiah Jabez Ebenezer Enoch Ezra Levi Amos Silas Septimus Horace Percy Sidney Wilfred""".split()
OLD_FEMALE = """Mary Elizabeth Sarah Ann Jane Emma Eliza Hannah Margaret Ellen Alice Harriet Martha Emily Susan
Catherine Charlotte Maria Agnes Ada Edith Florence Annie Clara Louisa Fanny Caroline Betsy Rebecca Esther
Lydia Priscilla Keziah Mercy Selina Phoebe Rose Lilian Mabel Gertrude Beatrice Dorothy""".split()
# Abbreviations clerks used for given names in registers and census books.
OLD_ABBREVIATIONS = {
    "William": ["Wm", "Wm.", "Willm"],
    "John": ["Jno", "Jno."],
    "Thomas": ["Thos", "Thos."],
    "James": ["Jas", "Jas."],
    "Joseph": ["Jos", "Jos."],
    "Charles": ["Chas", "Chas."],
    "Samuel": ["Saml", "Saml."],
    "Richard": ["Richd", "Ricd."],
    "Robert": ["Robt", "Robt."],
    "Frederick": ["Fredk", "Fred."],
    "Edward": ["Edwd", "Ed."],
    "Benjamin": ["Benjn", "Benj."],
    "Elizabeth": ["Eliz", "Betsy", "Eliza"],
    "Margaret": ["Margt", "Peggy"],
    "Catherine": ["Cath", "Kate"],
    "Ann": ["Anne", "Anna", "Nancy"],
    "Mary": ["Polly", "Mary Ann"],
    "Sarah": ["Sally", "Sara"],
    "Hannah": ["Hanna", "Anna"],
    "Susan": ["Susanna", "Susannah"],
    "Harriet": ["Harriett", "Hattie"],
}
OLD_SURNAMES = """Smith Jones Taylor Brown Williams Wilson Johnson Wright Wood Robinson Thompson Walker White Hall
Green Hughes Edwards Lewis Roberts Jackson Harrison Clarke Turner Hill Cooper Ward Moore King Baker Morris
Shaw Holt Barlow Ashton Whitehead Hargreaves Crossley Sutcliffe Greenwood Pickles Ackroyd Haworth Dewhurst
Entwistle Pilling Ormerod Duckworth Tattersall Nuttall Hindle Bottomley Pickering Fairclough Grimshaw
Lumb Nowell Whittaker Kershaw Lord Heap Riley Hartley Bamford Hoyle Marsden Ramsbottom Pennington""".split()
# Spelling of the same surname by different clerks.
OLD_SURNAME_VARIANTS = {
    "Whitehead": ["Whithead"],
    "Hargreaves": ["Hargraves", "Hargreave"],
    "Crossley": ["Crosley"],
    "Greenwood": ["Grenwood"],
    "Ackroyd": ["Akroyd", "Acroyd"],
    "Haworth": ["Howorth", "Haworthe"],
    "Entwistle": ["Entwisle", "Entwhistle"],
    "Tattersall": ["Tatersall"],
    "Nuttall": ["Nuttal"],
    "Smith": ["Smyth"],
    "Thompson": ["Thomson", "Tompson"],
    "Clarke": ["Clark"],
    "Bottomley": ["Bothomley"],
    "Duckworth": ["Duckwith"],
    "Kershaw": ["Kirshaw"],
    "Pickles": ["Pickels"],
    "Fairclough": ["Fairclow"],
    "Ramsbottom": ["Ramsbotham"],
}
OLD_PLACES = [
    ("Halifax", "HX"),
    ("Burnley", "BB"),
    ("Blackburn", "BB"),
    ("Bolton", "BL"),
    ("Oldham", "OL"),
    ("Huddersfield", "HD"),
    ("Bradford", "BD"),
    ("Rochdale", "OL"),
    ("Todmorden", "OL"),
    ("Keighley", "BD"),
    ("Preston", "PR"),
    ("Wigan", "WN"),
    ("Bury", "BL"),
    ("Skipton", "BD"),
    ("Colne", "BB"),
]
OCCUPATIONS = [
    "cotton weaver",
    "weaver",
    "spinner",
    "cotton spinner",
    "labourer",
    "agricultural labourer",
    "coal miner",
    "collier",
    "farmer",
    "domestic servant",
    "general servant",
    "dressmaker",
    "tailor",
    "shoemaker",
    "blacksmith",
    "carpenter",
    "joiner",
    "mason",
    "stone mason",
    "carter",
    "grocer",
    "innkeeper",
    "clerk",
    "schoolmaster",
    "teacher",
    "wool comber",
    "dyer",
    "mill hand",
    "washerwoman",
    "charwoman",
    "scholar",
    "none",
    "at home",
    "gentleman",
    "draper",
    "butcher",
    "baker",
    "railway porter",
]
# How the same occupation is written in another register.
OCCUPATION_VARIANTS = {
    "cotton weaver": ["weaver", "Cotton Weaver", "cotton wvr"],
    "coal miner": ["collier", "miner"],
    "agricultural labourer": ["ag lab", "Ag. Lab.", "farm labourer", "labourer"],
    "domestic servant": ["servant", "general servant"],
    "stone mason": ["mason"],
    "cotton spinner": ["spinner"],
    "joiner": ["carpenter"],
    "schoolmaster": ["teacher"],
    "mill hand": ["factory hand", "mill worker"],
}

# --- business contacts (b2b) ------------------------------------------------------------------
# Companies are drawn as STEM + TRADE + legal form ("Northwind Logistics Ltd"); other systems write
# them without the legal form, in capitals, or with "&" for "and" (see profiles._company_variant).
COMPANY_STEMS = """Northwind Contoso Fabrikam Tailspin Litware Proseware Lucerne Trey Coho Woodgrove Alpine Fourth
Southridge VanArsdel Relecloud Bellows Wingtip Nod Datum Humongous Margie Adventure Wideworld Blueyonder Graphic
Consolidated Firstup Bestforyou Citypower Kestrel Harrier Osprey Merlin Heron Lapwing Bramble Thistle Foxglove
Juniper Hawthorn Rowan Larch Aspen Cedar Granite Basalt Quartz Cobalt Argent Meridian Zenith Apex Summit Vertex
Beacon Harbour Anchor Compass Lantern Keystone Pinnacle Orbit Nimbus Strata Tidal Ember Falcon Sterling Crown
Regent Albion Pennine Cotswold Chiltern Mendip Solent Severn Thames Mersey Tyne Wessex Mercia Cambrian""".split()
COMPANY_TRADES = [
    "Logistics",
    "Engineering",
    "Consulting",
    "Foods",
    "Systems",
    "Partners",
    "Media",
    "Health",
    "Energy",
    "Insurance",
    "Software",
    "Construction",
    "Retail",
    "Travel",
    "Publishing",
    "Analytics",
    "Pharma",
    "Holdings",
    "Solutions",
    "Trading",
    "Legal",
    "Design",
    "Estates",
    "Security",
]
COMPANY_FORMS = ["Ltd", "Ltd", "Ltd", "plc", "LLP", "Limited", "Group", "& Co"]
# (city, area code, local digits) of the switchboards
UK_AREA_CODES = [
    ("London", "020", 8),
    ("Manchester", "0161", 7),
    ("Birmingham", "0121", 7),
    ("Leeds", "0113", 7),
    ("Bristol", "0117", 7),
    ("Glasgow", "0141", 7),
    ("Edinburgh", "0131", 7),
    ("Cardiff", "029", 8),
    ("Reading", "0118", 7),
    ("Cambridge", "01223", 6),
    ("Oxford", "01865", 6),
    ("Milton Keynes", "01908", 6),
]
JOB_TITLES = [
    "Head of Procurement",
    "Procurement Manager",
    "Buyer",
    "Senior Buyer",
    "Finance Director",
    "CFO",
    "Chief Executive Officer",
    "CEO",
    "Managing Director",
    "Operations Manager",
    "Head of Operations",
    "IT Manager",
    "Head of IT",
    "CTO",
    "Office Manager",
    "Executive Assistant",
    "PA to the CEO",
    "Marketing Manager",
    "Head of Marketing",
    "Sales Director",
    "Account Manager",
    "HR Manager",
    "HR Business Partner",
    "Facilities Manager",
    "Legal Counsel",
    "Project Manager",
    "Data Analyst",
]
# Titles that mean the same job, as written by another system or after a small promotion.
TITLE_VARIANTS = {
    "Chief Executive Officer": ["CEO"],
    "CEO": ["Chief Executive Officer", "Chief Exec."],
    "Procurement Manager": ["Purchasing Manager", "Head of Procurement"],
    "Buyer": ["Senior Buyer"],
    "Finance Director": ["FD", "CFO"],
    "Head of IT": ["IT Director", "IT Manager"],
    "Executive Assistant": ["EA", "PA to the CEO"],
    "Account Manager": ["Key Account Manager"],
    "HR Manager": ["Human Resources Manager", "HR Business Partner"],
}
